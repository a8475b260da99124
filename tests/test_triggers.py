"""The payment triggers as configuration: the shipped file, validation, and both lanes reading it."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from outreach.config import ConfigError, load_offers
from outreach.triggers import DEFAULT, default_triggers, load_triggers, triggers_for

REPO = Path(__file__).resolve().parent.parent


def test_the_shipped_file_is_the_built_in_definition_and_names_only_known_offers():
    codes = set(load_offers(REPO / "offers.yaml").by_code())
    shipped = triggers_for(REPO / "offers.yaml", codes)
    assert shipped == default_triggers()
    assert shipped.offer_codes() <= codes


def test_a_missing_file_gives_the_built_in_triggers(tmp_path):
    assert load_triggers(tmp_path / "triggers.yaml") == default_triggers()


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "triggers.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("change", "key", "why"),
    [
        (lambda d: d["triggers"]["airport_atm"].update(mcc=["60"]), "triggers.airport_atm.mcc", "four-digit"),
        (
            lambda d: d["triggers"]["large_balance"].update(above="lots"),
            "triggers.large_balance.above",
            "decimal",
        ),
        (
            lambda d: d["triggers"]["airline_ticket"].update(colour="red"),
            "triggers.airline_ticket.colour",
            "",
        ),
        (
            lambda d: d["triggers"]["airline_ticket"].update(mcc_ranges=[["3299", "3000"]]),
            "triggers.airline_ticket.mcc_ranges",
            "backwards",
        ),
        (lambda d: d["triggers"].pop("child_benefit"), "triggers.child_benefit", "required"),
    ],
)
def test_a_bad_definition_names_the_file_and_the_key(tmp_path, change, key, why):
    data = yaml.safe_load(yaml.safe_dump(DEFAULT))
    change(data)
    path = _write(tmp_path, data)
    with pytest.raises(ConfigError) as caught:
        load_triggers(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {key}")
    assert why.lower() in message.lower()


def test_a_trigger_naming_an_unknown_offer_is_refused(tmp_path):
    data = yaml.safe_load(yaml.safe_dump(DEFAULT))
    data["triggers"]["airport_atm"]["offers"] = {"HOLIDAY_LOAN": 0.0}
    path = _write(tmp_path, data)
    with pytest.raises(ConfigError, match=r"triggers\.airport_atm\.offers\.HOLIDAY_LOAN: not an offer"):
        load_triggers(path, {"TRAVEL_INSURANCE", "CREDIT_CARD", "KIDS_SAVINGS"})


def test_scores_follow_the_configured_parameters():
    triggers = default_triggers()
    assert triggers.candidates("airport_atm", triggers.airport_atm.score.of(Decimal("-250"))) == [
        ("TRAVEL_INSURANCE", 0.65),
        ("CREDIT_CARD", 0.55),
    ]
    assert triggers.child_benefit.score(Decimal("560")) == pytest.approx(0.8)  # two children
    assert triggers.airline_ticket.matches_mcc("3136") and triggers.airline_ticket.matches_mcc("4511")
    assert not triggers.airline_ticket.matches_mcc("6011")


def test_both_lanes_follow_an_edited_triggers_file(engine, tmp_path):
    from datetime import UTC, date, datetime

    from sqlalchemy import insert

    from outreach.candidates import PaymentSignals
    from outreach.live.events import PaymentEvent, fired
    from outreach.models import Transaction

    data = yaml.safe_load(yaml.safe_dump(DEFAULT))
    data["triggers"]["airport_atm"]["place_words"] = ["lelystad"]
    data["triggers"]["airport_atm"]["offers"] = {"TRAVEL_INSURANCE": 0.0}
    triggers = load_triggers(_write(tmp_path, data))
    at = datetime(2027, 3, 9, 11, 0, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            insert(Transaction),
            [
                {
                    "transaction_id": "L1",
                    "customer_id": "C1",
                    "booked_at": at,
                    "amount": "-50",
                    "mcc": "6011",
                    "city": "Lelystad",
                },
                {
                    "transaction_id": "S1",
                    "customer_id": "C2",
                    "booked_at": at,
                    "amount": "-50",
                    "mcc": "6011",
                    "city": "Schiphol",
                },
            ],
        )
    daily = [
        c for chunk in PaymentSignals(engine, triggers=triggers).chunks(date(2027, 3, 10)) for c in chunk
    ]
    assert [(c["customer_id"], c["offer_code"]) for c in daily] == [("C1", "TRAVEL_INSURANCE")]
    lelystad = PaymentEvent(
        event_id="L1", customer_id="C1", occurred_at=at, amount="-50", mcc="6011", city="Lelystad"
    )
    schiphol = lelystad.model_copy(update={"city": "Schiphol"})
    assert [f.offers for f in fired(lelystad, triggers)] == [
        [("TRAVEL_INSURANCE", 0.53)]
    ]  # 0.5 + 0.3 x 50 / 500
    assert fired(schiphol, triggers) == []
