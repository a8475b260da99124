"""Dispatch through the outbox channels: claims, consent recheck, idempotent reruns."""

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from channels import load_channel
from channels.errors import OutcomeUnknown, RecipientRejected, TransientError
from channels.memory import MemoryEmail
from outreach import consent, ledger
from outreach.config import Settings, load_offers
from outreach.db import session_scope
from outreach.dispatch import Dispatcher
from outreach.models import Message
from outreach.planning import decide_day
from tests.factories import add_candidates, add_customers, add_suppression, customer
from tests.fixture_files import OFFERS_FILE

DAY = date(2026, 11, 18)
NOON = datetime(2026, 11, 18, 11, 0, tzinfo=UTC)


def setup_day(engine, n=5, channel_overrides=None):
    add_customers(engine, *[customer(f"C{i}", **(channel_overrides or {})) for i in range(n)])
    add_candidates(engine, DAY, *[(f"C{i}", "KIDS_SAVINGS") for i in range(n)])
    decide_day(engine, DAY, load_offers(OFFERS_FILE), now=NOON)


def due(engine, channel):
    with session_scope(engine) as session:
        return ledger.due_ids(session, DAY, channel, NOON)


def statuses(engine) -> dict[str, str]:
    with session_scope(engine) as session:
        return {m.customer_id: m.status for m in session.scalars(select(Message))}


def make(engine, tmp_path, channel):
    settings = Settings(database_url=str(engine.url), outbox_dir=tmp_path / "outbox")
    return Dispatcher(
        engine,
        settings,
        load_offers(OFFERS_FILE),
        load_channel("email", "outbox", outbox_dir=settings.outbox_dir) if channel is None else channel,
        "w1",
    )


def test_sends_each_message_once_even_when_dispatched_twice(engine, tmp_path):
    setup_day(engine)
    dispatcher = make(engine, tmp_path, None)
    ids = due(engine, "email")
    first = dispatcher.send_ids(ids)
    second = dispatcher.send_ids(ids)
    assert (first.claimed, first.sent) == (5, 5)
    assert (second.claimed, second.sent) == (0, 0)
    files = sorted((tmp_path / "outbox" / DAY.isoformat() / "email").glob("*.eml"))
    assert len(files) == 5
    text = files[0].read_text()
    assert "Subject: Sparen voor later, zonder kosten" in text and "Beste Anne" in text
    assert set(statuses(engine).values()) == {"sent"}


def test_opt_out_between_planning_and_sending_cancels(engine, tmp_path):
    setup_day(engine, n=3)
    objected = NOON + timedelta(minutes=5)  # the test's clock, never the wall clock
    with session_scope(engine) as session:
        consent.record(session, "C1", "email", "opt_out", "test", at=objected)
        consent.record(session, "C2", "all", "opt_out", "test", at=objected)
    dispatcher = make(engine, tmp_path, None)
    dispatcher.clock = lambda: NOON + timedelta(minutes=10)
    report = dispatcher.send_ids(due(engine, "email"))
    assert (report.sent, report.cancelled) == (1, 2)
    assert statuses(engine) == {"C0": "sent", "C1": "cancelled", "C2": "cancelled"}


def test_suppression_listed_after_planning_cancels_with_the_list_named(engine, tmp_path):
    setup_day(engine, n=6)
    sending_day = date(2026, 11, 20)  # two days after planning: held or carried over until then
    add_suppression(engine, "C1", "deceased", sending_day)
    add_suppression(engine, "C2", "arrears", date(2026, 11, 19))
    add_suppression(engine, "C3", "complaint", date(2026, 11, 1), valid_until=date(2026, 11, 19))  # over
    add_suppression(engine, "C4", "minor", date(2026, 11, 21))  # not yet
    add_suppression(engine, "C5", "fraud_hold", sending_day)  # a list the policy does not name
    add_suppression(engine, "C5", "vulnerable", sending_day)  # the most severe known list is named
    dispatcher = make(engine, tmp_path, None)
    dispatcher.clock = lambda: datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    report = dispatcher.send_ids(due(engine, "email"))
    assert (report.sent, report.cancelled) == (3, 3)
    with session_scope(engine) as session:
        rows = {m.customer_id: m for m in session.scalars(select(Message))}
    assert {c: m.status for c, m in rows.items()} == {
        "C0": "sent",
        "C1": "cancelled",
        "C2": "cancelled",
        "C3": "sent",
        "C4": "sent",
        "C5": "cancelled",
    }
    assert rows["C1"].last_error_code == "suppressed_before_send_deceased"
    assert rows["C2"].last_error_code == "suppressed_before_send_arrears"
    assert rows["C5"].last_error_code == "suppressed_before_send_vulnerable"
    files = list((tmp_path / "outbox" / DAY.isoformat() / "email").glob("*.eml"))
    assert len(files) == 3


def test_a_list_scoped_to_other_topics_does_not_cancel(engine, tmp_path):
    setup_day(engine, n=2)
    add_suppression(engine, "C1", "arrears", DAY)
    add_suppression(engine, "C0", "fraud_hold", DAY)  # unnamed lists block everything
    dispatcher = make(engine, tmp_path, None)
    dispatcher.policy.suppression_scopes["arrears"] = ["credit"]  # savings offers stay allowed
    dispatcher.clock = lambda: NOON
    report = dispatcher.send_ids(due(engine, "email"))
    assert (report.sent, report.cancelled) == (1, 1)
    assert statuses(engine) == {"C0": "cancelled", "C1": "sent"}


def test_errors_map_to_ledger_states(engine, tmp_path):
    setup_day(engine, n=4)
    channel = MemoryEmail(
        {
            "C1": RecipientRejected("unsubscribed", code="21610", opted_out=True),
            "C2": TransientError("503", code="503"),
            "C3": OutcomeUnknown("read timeout"),
        }
    )
    report = make(engine, tmp_path, channel).send_ids(due(engine, "email"))
    assert (report.sent, report.failed, report.requeued, report.unknown) == (1, 1, 1, 1)
    assert statuses(engine) == {"C0": "sent", "C1": "failed", "C2": "planned", "C3": "unknown"}
    with session_scope(engine) as session:
        assert not consent.current(session, "C1").allows("email")  # provider opt-out recorded
        failed = session.scalars(select(Message).where(Message.customer_id == "C1")).one()
    assert failed.last_error_code == "21610"
    # the transient one is retried on the next pass; the unknown one is never resent blindly
    channel.answers.clear()
    again = make(engine, tmp_path, channel).send_ids(due(engine, "email"))
    assert again.sent == 1
    assert channel.calls.count("C3") == 1 and channel.calls.count("C2") == 2
