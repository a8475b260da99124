"""Exports of a day's decisions and messages, as CSV and JSON Lines, read back."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import insert

from outreach import exports
from outreach.models import Candidate, Decision, Message

DAY = date(2026, 11, 20)
STAMP = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


def candidate(id_, day, customer, offer, trigger, ref):
    return {
        "id": id_,
        "candidate_date": day,
        "customer_id": customer,
        "offer_code": offer,
        "trigger": trigger,
        "trigger_ref": ref,
        "score": 0.5,
        "source": "payment_signals",
    }


def decision(id_, day, customer, offer, outcome, reason, channel, detail=None):
    return {
        "id": id_,
        "candidate_id": id_,
        "decision_date": day,
        "customer_id": customer,
        "offer_code": offer,
        "outcome": outcome,
        "reason": reason,
        "channel": channel,
        "legal_basis": "legitimate_interest" if channel else None,
        "detail": detail,
        "decided_at": STAMP,
    }


@pytest.fixture
def day_of_work(engine):
    yesterday = date(2026, 11, 19)
    with engine.begin() as conn:
        conn.execute(
            insert(Candidate),
            [
                candidate(1, DAY, "C1", "KIDS_SAVINGS", "child_benefit", "TX1"),
                candidate(2, DAY, "C2", "CREDIT_CARD", "airport_atm", "TX2"),
                candidate(3, yesterday, "C3", "CREDIT_CARD", "airport_atm", "TX3"),
            ],
        )
        conn.execute(
            insert(Decision),
            [
                decision(1, DAY, "C1", "KIDS_SAVINGS", "planned", "ok", "email"),
                decision(2, DAY, "C2", "CREDIT_CARD", "suppressed", "global_opt_out", None,
                         detail="opted out by phone from +31612345678"),
                decision(3, yesterday, "C3", "CREDIT_CARD", "planned", "ok", "letter"),
            ],
        )  # fmt: skip
        conn.execute(
            insert(Message).values(
                idempotency_key="2026-11-20:C1:KIDS_SAVINGS:email",
                decision_id=1,
                run_date=DAY,
                customer_id="C1",
                offer_code="KIDS_SAVINGS",
                channel="email",
                status="failed",
                attempts=1,
                last_error="550 mailbox jan@example.com unknown",
                created_at=STAMP,
                updated_at=STAMP,
            )
        )
    return engine


def test_decisions_as_csv_with_their_triggers_and_no_contact_data(day_of_work):
    out = io.StringIO()
    assert exports.write(day_of_work, "decisions", DAY, "csv", out) == 2
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [(r["customer_id"], r["outcome"], r["reason"]) for r in rows] == [
        ("C1", "planned", "ok"),
        ("C2", "suppressed", "global_opt_out"),
    ]
    assert rows[0]["trigger"] == "child_benefit" and rows[0]["trigger_ref"] == "TX1"
    assert rows[0]["decided_at"] == "2026-11-20T09:30:00+00:00" and rows[0]["channel"] == "email"
    assert rows[1]["channel"] == ""
    assert "+31612345678" not in out.getvalue() and "+316" in rows[1]["detail"]  # masked, not dropped


def test_messages_as_jsonl(day_of_work):
    out = io.StringIO()
    assert exports.write(day_of_work, "messages", DAY, "jsonl", out) == 1
    (message,) = [json.loads(line) for line in out.getvalue().splitlines()]
    assert message["idempotency_key"] == "2026-11-20:C1:KIDS_SAVINGS:email"
    assert message["status"] == "failed" and message["attempts"] == 1 and message["sent_at"] is None
    assert message["run_date"] == "2026-11-20"
    assert "jan@example.com" not in message["last_error"] and "@example.com" in message["last_error"]
    empty = io.StringIO()
    assert exports.write(day_of_work, "messages", date(2026, 11, 19), "jsonl", empty) == 0
    assert empty.getvalue() == ""


def test_unknown_export_or_format_is_refused(day_of_work):
    with pytest.raises(ValueError, match="unknown export 'customers'"):
        exports.write(day_of_work, "customers", DAY, "csv", io.StringIO())
    with pytest.raises(ValueError, match="unknown format 'xml'"):
        exports.write(day_of_work, "decisions", DAY, "xml", io.StringIO())


FORMULAS = ['=HYPERLINK("http://evil.example/x","Klik")', "@SUM(1+1)"]


@pytest.fixture
def formulas_in_every_column(engine):
    """A candidates file or a transaction id can put a formula in trigger_ref, a provider in its texts."""
    with engine.begin() as conn:
        conn.execute(
            insert(Candidate),
            [
                candidate(n, DAY, f"C{n}", "CREDIT_CARD", "airport_atm", ref)
                for n, ref in enumerate(FORMULAS, 1)
            ],
        )
        conn.execute(
            insert(Decision),
            [decision(n, DAY, f"C{n}", "CREDIT_CARD", "planned", "ok", "sms") for n in (1, 2)],
        )
        conn.execute(
            insert(Message).values(
                idempotency_key="2026-11-20:C1:CREDIT_CARD:sms",
                decision_id=1,
                run_date=DAY,
                customer_id="C1",
                offer_code="CREDIT_CARD",
                channel="sms",
                status="failed",
                attempts=1,
                provider_id="-2+3+cmd|' /C calc'!A0",
                last_error="\t=1+1 from the provider",
                created_at=STAMP,
                updated_at=STAMP,
            )
        )
    return engine


def test_csv_exports_never_hand_a_spreadsheet_a_formula(formulas_in_every_column):
    out = io.StringIO()
    assert exports.write(formulas_in_every_column, "decisions", DAY, "csv", out) == 2
    decisions = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [r["trigger_ref"] for r in decisions] == ["'" + f for f in FORMULAS]
    out = io.StringIO()
    assert exports.write(formulas_in_every_column, "messages", DAY, "csv", out) == 1
    (message,) = csv.DictReader(io.StringIO(out.getvalue()))
    assert message["provider_id"] == "'-2+3+cmd|' /C calc'!A0"
    assert message["last_error"] == "'\t=1+1 from the provider"
    # JSON Lines is read by programs, not spreadsheets: values stay exactly as stored
    out = io.StringIO()
    exports.write(formulas_in_every_column, "decisions", DAY, "jsonl", out)
    assert [json.loads(line)["trigger_ref"] for line in out.getvalue().splitlines()] == FORMULAS
