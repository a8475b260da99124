"""Reading payment events: poison is named by its reason; each trigger fires as the daily SQL does."""

from __future__ import annotations

import json

import pytest

from outreach.live.events import PaymentEvent, PoisonEvent, fired, parse_event
from outreach.triggers import default_triggers

GOOD = {"event_id": "T1", "customer_id": "C1", "occurred_at": "2027-03-09T11:00:00+00:00", "amount": "-20.00"}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"amount": "twelve"}, "amount_not_a_number"),
        ({"amount": "NaN"}, "amount_not_a_number"),
        ({"amount": "Infinity"}, "amount_not_a_number"),
        ({"balance_after": "lots"}, "amount_not_a_number"),
        ({"amount": None}, "bad_schema"),
        ({"occurred_at": "2027-03-09T11:00:00"}, "bad_schema"),  # no UTC offset
        ({"customer_id": ""}, "bad_schema"),
    ],
)
def test_poison_is_named_by_its_reason(change, reason):
    with pytest.raises(PoisonEvent) as caught:
        parse_event(json.dumps({**GOOD, **change}).encode())
    assert caught.value.reason == reason


def test_unreadable_bytes_are_bad_json():
    for data in (b"\xff\xfe", b"[1, 2]", b"{"):
        with pytest.raises(PoisonEvent, match="bad_json"):
            parse_event(data)


def test_a_good_event_parses_with_its_amount_as_a_decimal():
    event = parse_event(json.dumps({**GOOD, "amount": -20.5}).encode())
    assert str(event.amount) == "-20.5" and event.occurred_at.utcoffset().total_seconds() == 0


def _event(**fields) -> PaymentEvent:
    return PaymentEvent.model_validate({**GOOD, **fields})


@pytest.mark.parametrize(
    ("fields", "trigger"),
    [
        ({"mcc": "6011", "city": "Schiphol"}, "airport_atm"),
        ({"mcc": "6011", "city": "Utrecht"}, None),
        ({"mcc": "3136", "amount": "-300"}, "airline_ticket"),
        ({"mcc": "4511", "amount": "-300"}, "airline_ticket"),
        ({"mcc": "3136", "amount": "300"}, None),  # a refund fires nothing
        (
            {
                "amount": "560",
                "counterparty_name": "Sociale Verzekeringsbank",
                "description": "Kinderbijslag Q1",
            },
            "child_benefit",
        ),
        ({"amount": "560", "counterparty_name": "SVB", "description": "Zorgtoeslag"}, None),
        ({"amount": "5000", "balance_after": "26000"}, "large_balance"),
        ({"amount": "5000", "balance_after": "31000"}, None),  # was already above before it
    ],
)
def test_each_trigger_fires_on_its_event(fields, trigger):
    found = [f.trigger for f in fired(_event(**fields), default_triggers())]
    assert found == ([trigger] if trigger else [])


def test_the_cli_names_an_unreachable_broker_in_one_line(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from outreach.cli import app

    monkeypatch.setenv("OUTREACH_DATABASE_URL", f"sqlite:///{tmp_path / 'none.db'}")
    for args in (["live", "--max-seconds", "1"], ["events", "replay", "--limit", "1"]):
        result = CliRunner().invoke(app, [*args, "--url", "nats://127.0.0.1:1"])
        assert result.exit_code == 2
        assert "--url nats://127.0.0.1:1: cannot reach the NATS server" in result.output
        assert "Traceback" not in result.output
