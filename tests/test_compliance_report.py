"""`outreach compliance report`: every figure from the ledger, consent history and events, on seeded data."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from pypdf import PdfReader
from sqlalchemy import insert
from typer.testing import CliRunner

from outreach.calls import accounts
from outreach.calls.models import CallAttempt, CallTask
from outreach.cli import app
from outreach.compliance import report as accountability
from outreach.compliance.figures import Period
from outreach.config import get_settings, load_offers
from outreach.db import session_scope
from outreach.models import DeliveryEventRecord, Message
from tests.calls_support import CHEAP_HASHER, PASSWORD
from tests.factories import add_consent, add_customers, add_suppression, customer

FIXTURE = Path(__file__).parent / "fixtures" / "offers.yaml"
OFFERS = load_offers(FIXTURE)
MARCH = Period(date(2026, 3, 1), date(2026, 3, 31))


def at(day: int, hour: int, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, 0, tzinfo=UTC)


def send(engine, customer_id: str, offer: str, channel: str, sent: datetime) -> int:
    with session_scope(engine) as session:
        return session.execute(
            insert(Message).returning(Message.id),
            [
                {
                    "idempotency_key": f"{sent.date()}:{customer_id}:{offer}:{channel}",
                    "run_date": sent.date(),
                    "customer_id": customer_id,
                    "offer_code": offer,
                    "channel": channel,
                    "status": "sent",
                    "created_at": sent,
                    "updated_at": sent,
                    "sent_at": sent,
                }
            ],
        ).scalar_one()


def call_attempt(engine, message_id: int, customer_id: str, when: datetime) -> None:
    with session_scope(engine) as session:
        accounts.add_team(session, "nl-1", 10, None)
        agent = accounts.add_agent(session, "agent1", PASSWORD, "nl-1")
        task = CallTask(
            message_id=message_id,
            run_date=when.date(),
            call_date=when.date(),
            team_id=agent.team_id,
            customer_id=customer_id,
            offer_code="INVEST_CALL",
            priority=4,
            score=0.5,
            status="done",
            attempts=1,
            next_attempt_at=when,
            window_end=when,
            created_at=when,
            updated_at=when,
        )
        session.add(task)
        session.flush()
        session.add(CallAttempt(task_id=task.id, agent_id=agent.id, attempt=1, outcome="interested", at=when))


@pytest.fixture
def seeded(engine, monkeypatch):
    monkeypatch.setattr(accounts, "HASHER", CHEAP_HASHER)
    add_customers(engine, *[customer(c) for c in "ABCDEFG"])
    send(engine, "A", "KIDS_SAVINGS", "email", at(2, 10))
    add_consent(engine, "A", "all", at=at(5, 9))  # objects after the contact: counts in the opt-out rate
    b_email = send(engine, "B", "KIDS_SAVINGS", "email", at(2, 10))
    add_consent(engine, "C", "sms", at=at(1, 9))  # objected to SMS ...
    send(engine, "C", "TRAVEL_INSURANCE", "sms", at(3, 10))  # ... and still got one: a violation
    add_suppression(engine, "D", "vulnerable", date(2026, 3, 1))
    add_suppression(engine, "D", "arrears", date(2025, 1, 1), date(2025, 12, 31))  # over before March
    send(engine, "D", "SAVINGS_BOOST", "letter", at(4, 10))  # on a suppression list: a violation
    send(engine, "E", "TRAVEL_INSURANCE", "sms", at(6, 5))  # 06:00 in Amsterdam: quiet hours
    call = send(engine, "F", "INVEST_CALL", "call", at(6, 9))
    call_attempt(engine, call, "F", at(7, 11))  # a Saturday: no calls on non-working days
    add_consent(engine, "F", "phone", at=at(10, 12))
    send(engine, "G", "KIDS_SAVINGS", "email", at(27, 10, month=2))  # before the period
    add_consent(engine, "G", "all", at=at(28, 10, month=2))
    with session_scope(engine) as session:
        session.execute(
            insert(DeliveryEventRecord),
            [
                {
                    "message_id": b_email,
                    "channel": "email",
                    "provider": "sendgrid",
                    "provider_event_id": "ev-spam",
                    "event_type": "complained",
                    "occurred_at": at(3, 8),
                    "received_at": at(3, 8),
                }
            ],
        )
    # the sources add_consent records are all "test"; give each objection its real path
    with engine.begin() as conn:
        for customer_id, source in (
            ("A", "web:unsubscribe-page"),
            ("C", "sms:STOP"),
            ("F", "call_centre:agent1"),
        ):
            conn.exec_driver_sql(
                "UPDATE consent_events SET source = %s WHERE customer_id = %s"
                if engine.dialect.name == "postgresql"
                else "UPDATE consent_events SET source = ? WHERE customer_id = ?",
                (source, customer_id),
            )
    return engine


def rows(report) -> dict[tuple[str, str], accountability.Row]:
    return {(r.offer, r.channel): r for r in report.rows}


def test_figures_per_offer_and_channel(seeded):
    report = accountability.build(seeded, MARCH, OFFERS, now=at(31, 23))
    by = rows(report)
    kids = by[("KIDS_SAVINGS", "email")]
    assert (kids.contacts, kids.customers, kids.objected_after, kids.complaints) == (2, 2, 1, 1)
    assert kids.opt_out_rate == 0.5
    assert by[("TRAVEL_INSURANCE", "sms")].despite_objection == 1
    assert by[("TRAVEL_INSURANCE", "sms")].quiet_hours == 1
    assert by[("SAVINGS_BOOST", "letter")].despite_suppression == 1
    assert by[("INVEST_CALL", "call")].quiet_hours == 1
    assert by[("CREDIT_CARD", "letter")].contacts == 0  # every configured offer and channel has a row
    total = report.total()
    assert (total.contacts, total.despite_objection, total.despite_suppression, total.quiet_hours) == (
        6,
        1,
        1,
        2,
    )
    assert report.violations == 4


def test_objections_by_path_and_their_effect(seeded):
    report = accountability.build(seeded, MARCH, OFFERS, now=at(31, 23))
    assert [(o["path"], o["scope"], o["objections"]) for o in report.objections] == [
        ("call_centre", "phone", 1),
        ("sms", "sms", 1),
        ("web", "all", 1),
    ]
    # C objected on 1 March 09:00 and still got an SMS on 3 March 10:00; A and F got nothing after
    assert sorted(report.effect_seconds) == [0.0, 0.0, (2 * 24 + 1) * 3600.0]
    assert report.effect_max == report.effect_p99 == (2 * 24 + 1) * 3600.0


def test_a_clean_period_has_zero_violations(seeded):
    report = accountability.build(seeded, Period(date(2026, 3, 8), date(2026, 3, 31)), OFFERS)
    assert report.total().contacts == 0 and report.violations == 0
    assert report.effect_seconds == [0.0]  # F's objection: nothing after it


def test_cli_writes_html_and_pdf_with_the_assessment(seeded, tmp_path, monkeypatch):
    monkeypatch.setenv("OUTREACH_DATABASE_URL", seeded.url.render_as_string(hide_password=False))
    monkeypatch.setenv("OUTREACH_OFFERS_FILE", str(FIXTURE))
    get_settings.cache_clear()
    try:
        args = ["compliance", "report", "--from", "2026-03-01", "--to", "2026-03-31", "--out", str(tmp_path)]
        result = CliRunner().invoke(app, args)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert (
        "6 contacts, 3 objections; despite objection 1, despite suppression 1, in quiet hours 2"
        in result.output
    )
    html = (tmp_path / "compliance-2026-03-01-2026-03-31.html").read_text()
    purpose = OFFERS.by_code()["KIDS_SAVINGS"].legitimate_interest.purpose
    assert purpose.replace("'", "&#39;") in html and "frame-ancestors" not in html
    assert "data:image/png;base64," in html and "Content-Security-Policy" in html
    pdf = PdfReader(tmp_path / "compliance-2026-03-01-2026-03-31.pdf")
    text = " ".join(page.extract_text() for page in pdf.pages)
    assert "Accountability report" in text and "Balancing of interests" in text and "KIDS_SAVINGS" in text


def test_bad_dates_fail_in_one_line(tmp_path):
    result = CliRunner().invoke(app, ["compliance", "report", "--from", "2026-13-01", "--to", "2026-03-31"])
    assert result.exit_code == 2 and result.output.strip() == "--from '2026-13-01': not a date (YYYY-MM-DD)"
