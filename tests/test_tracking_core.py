"""The tracking core without HTTP, on SQLite and PostgreSQL: store once, forward only, replay,
reconcile through an adapter's look-up, and the day's lifecycle table."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update

from channels.errors import TransientError
from channels.events import DeliveryEvent, EventType, Reason
from channels.memory import MemorySMS
from channels.outbox import OutboxEmail
from outreach import consent, ledger, tracking
from outreach.config import Settings
from outreach.db import session_scope
from outreach.delivery_status import lifecycle
from outreach.models import DeliveryEventRecord, Message, MessageTransition
from outreach.reconcile import reconcile
from tests.factories import add_customers, customer
from tests.fixture_files import OFFERS_FILE
from tests.webhook_kit import DAY, SENT_AT, add_message, message, status_of

NOW = SENT_AT + timedelta(hours=5)


def sms_event(kind: EventType, sid: str, n: int = 0, **kw) -> DeliveryEvent:
    return DeliveryEvent(
        type=kind,
        channel="sms",
        provider="twilio",
        message_id=kw.pop("message_id", None),
        provider_message_id=sid,
        timestamp=SENT_AT + timedelta(minutes=n),
        event_id=kw.pop("event_id", f"{sid}:{kind}"),
        raw={"MessageSid": sid, "MessageStatus": str(kind)},
        **kw,
    )


def ingest(engine, events) -> tracking.IngestResult:
    with session_scope(engine) as session:
        return tracking.ingest(session, events)


def test_each_event_is_stored_once_by_its_id_else_by_its_content(engine):
    add_customers(engine, customer("C1"))
    mid = add_message(engine, "C1", provider_id="SM1")
    first = ingest(engine, [sms_event(EventType.DELIVERED, "SM1")])
    again = ingest(engine, [sms_event(EventType.DELIVERED, "SM1")])
    # a provider's own id says which event it is: equal content under another id is another event
    renamed = ingest(engine, [sms_event(EventType.DELIVERED, "SM1", event_id="another-id")])
    assert (first.stored, first.moved) == (1, 1)
    assert (again.stored, again.duplicates, renamed.stored, renamed.duplicates) == (0, 1, 1, 0)
    no_id = [sms_event(EventType.DELIVERED, "SM1", 1, event_id=None)] * 2
    assert (ingest(engine, no_id).stored, ingest(engine, no_id).stored) == (1, 0)
    assert status_of(engine, mid) == "delivered"


def test_forward_only_across_batches_and_terminal_states(engine):
    add_customers(engine, customer("C1"))
    mid = add_message(engine, "C1", provider_id="SM1")
    ingest(engine, [sms_event(EventType.UNDELIVERED, "SM1", 2, reason=Reason.OTHER)])
    late = ingest(engine, [sms_event(EventType.DELIVERED, "SM1", 3), sms_event(EventType.SENT, "SM1", 1)])
    assert late.stored == 2 and late.moved == 0
    assert status_of(engine, mid) == "undelivered"
    with session_scope(engine) as session:
        steps = session.execute(
            select(MessageTransition.from_status, MessageTransition.to_status).where(
                MessageTransition.message_id == mid
            )
        ).all()
    assert [tuple(s) for s in steps] == [("sent", "undelivered")]


def test_callback_faster_than_the_dispatcher_is_applied_by_replay(engine):
    """Twilio can call back before record_sent stores the SID: the event waits, then counts."""
    add_customers(engine, customer("C1"))
    mid = add_message(engine, "C1", status="sending", provider_id=None, sent_at=None)
    early = ingest(engine, [sms_event(EventType.DELIVERED, "SMfast")])
    assert early.unmatched == 1 and status_of(engine, mid) == "sending"
    with session_scope(engine) as session:
        ledger.record_sent(session, "twilio", {mid: "SMfast"})
    with session_scope(engine) as session:
        result = tracking.replay(session)
    assert (result.matched, result.moved) == (1, 1)
    assert status_of(engine, mid) == "delivered"
    with session_scope(engine) as session:
        assert tracking.unmatched_events(session) == []


def test_reconcile_settles_unknowns_the_provider_has_and_flags_the_rest(engine, tmp_path):
    add_customers(engine, *[customer(f"C{i}") for i in range(1, 7)])
    found = add_message(engine, "C1", status="unknown")
    missing = add_message(engine, "C2", status="unknown")
    silent = add_message(engine, "C3", provider_id="SMc")  # sent, never a final callback
    fresh = add_message(engine, "C4", provider_id="SMd", sent_at=NOW - timedelta(minutes=10))
    email = add_message(engine, "C5", channel="email", status="unknown")
    called_back = add_message(engine, "C6", status="sending", provider_id=None, sent_at=None)
    ingest(engine, [sms_event(EventType.DELIVERED, "SMfast")])  # its callback came before record_sent
    with session_scope(engine) as session:
        ledger.record_sent(session, "twilio", {called_back: "SMfast"})
    sms = MemorySMS(found={str(found)})
    adapters = {"sms": sms, "email": OutboxEmail(tmp_path)}  # the outbox cannot be asked
    window = {"older_than": timedelta(hours=2), "flag_after": timedelta(hours=4), "now": NOW}
    report = reconcile(engine, Settings(), adapter_for=adapters.__getitem__, **window)
    assert report.replayed == 1 and status_of(engine, called_back) == "delivered"
    assert sms.asked[0][0] == sorted([str(found), str(missing)]) and sms.closed  # only unknowns asked
    assert sms.asked[0][1] <= SENT_AT
    assert (report.stuck, report.looked_up, report.moved, report.not_found) == (4, 2, 1, 1)
    assert (message(engine, found).status, message(engine, found).provider_id) == ("sent", f"memory-{found}")
    assert "email" in report.not_looked_up
    # past flag_after and still open: flagged, status untouched, nothing resent
    assert report.flagged == 3  # the unknown Twilio lacks, the silent SMS, the email nobody could ask
    assert (message(engine, missing).status, message(engine, missing).last_error_code) == ("unknown", "stuck")
    assert (message(engine, silent).status, message(engine, silent).last_error_code) == ("sent", "stuck")
    assert message(engine, email).last_error_code == "stuck"
    assert message(engine, fresh).last_error_code is None
    again = reconcile(engine, Settings(), adapter_for=adapters.__getitem__, **window)
    assert again.flagged == 0  # flagged once


def test_a_failing_look_up_is_reported_not_fatal(engine):
    add_customers(engine, customer("C1"))
    add_message(engine, "C1", status="unknown")
    sms = MemorySMS(lookup_error=TransientError("provider look-up timed out"))
    report = reconcile(engine, Settings(), adapter_for=lambda kind: sms, channels=("sms",), now=NOW)
    assert report.looked_up == 0 and "timed out" in report.not_looked_up["sms"]


def test_lifecycle_counts_per_channel_and_offer(engine):
    add_customers(engine, *[customer(f"C{i}") for i in range(1, 7)])
    ids = {
        "delivered": add_message(engine, "C1", provider_id="SM1"),
        "failed": add_message(engine, "C2", provider_id="SM2"),
        "failed2": add_message(engine, "C3", provider_id="SM3"),
        "awaiting": add_message(engine, "C4", provider_id="SM4"),
        "unknown": add_message(engine, "C5", status="unknown"),
        "bounced": add_message(engine, "C6", channel="email", provider_id="E6"),
    }
    ingest(
        engine,
        [
            sms_event(EventType.DELIVERED, "SM1"),
            sms_event(EventType.UNDELIVERED, "SM2", metadata={"error_code": "30006"}, reason=Reason.INVALID),
            sms_event(EventType.FAILED, "SM3", metadata={"error_code": "30006"}, reason=Reason.INVALID),
            DeliveryEvent(
                type=EventType.BOUNCED,
                channel="email",
                provider="sendgrid",
                message_id=str(ids["bounced"]),
                provider_message_id="E6.1",
                timestamp=SENT_AT,
                reason=Reason.BOUNCED,
                event_id="b1",
            ),
            sms_event(EventType.DELIVERED, "SMorphan"),
        ],
    )
    with session_scope(engine) as session:  # C1 objects after the text, C4 had objected before it
        consent.record(session, "C1", "sms", "opt_out", "test", at=SENT_AT + timedelta(hours=1))
        consent.record(session, "C4", "all", "opt_out", "test", at=SENT_AT - timedelta(days=1))
        session.execute(
            update(DeliveryEventRecord).values(received_at=datetime.combine(DAY, SENT_AT.timetz()))
        )
    report = lifecycle(engine, DAY)
    rows = {(r.channel, r.offer_code): r for r in report.rows}
    sms = rows[("sms", "KIDS_SAVINGS")]
    assert (sms.messages, sms.sent, sms.delivered, sms.failed, sms.bounced) == (5, 4, 1, 2, 0)
    assert (sms.awaiting, sms.unknown, sms.opted_out_after_contact) == (1, 1, 1)
    assert sms.top_failure_reasons == "30006 ×2"
    email = rows[("email", "KIDS_SAVINGS")]
    assert (email.messages, email.sent, email.bounced, email.top_failure_reasons) == (1, 1, 1, "bounced ×1")
    assert report.unmatched_events == 1
    assert report.totals()["messages"] == 6
    assert all("C1" not in str(value) for row in report.records() for value in row.values())


def test_status_cli_prints_the_table(engine, db_url, monkeypatch):
    from typer.testing import CliRunner

    from outreach.cli import app
    from outreach.cli import status as status_cli
    from outreach.config import get_settings

    add_customers(engine, customer("C1"))
    add_message(engine, "C1", status="failed")
    with session_scope(engine) as session:
        session.execute(update(Message).values(last_error_code="21211"))
    monkeypatch.setenv("OUTREACH_DATABASE_URL", db_url)
    monkeypatch.setattr(status_cli.console, "width", 200)  # a terminal wide enough for every column
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["status", "--date", DAY.isoformat()])
        bad = CliRunner().invoke(app, ["status", "--date", "18-11-2026"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "KIDS_SAVINGS" in result.output and "21211 ×1" in result.output
    assert bad.exit_code != 0 and "YYYY-MM-DD" in bad.output


class CallsBackBeforeReturning(MemorySMS):
    """An SMS channel whose provider calls back (delivered) before send_batch has even returned,
    as Twilio can under load: the callback finds the message still ``sending``."""

    provider = "twilio"

    def __init__(self, engine) -> None:
        super().__init__()
        self.engine = engine

    def send_batch(self, messages):
        for m in messages:
            ingest(
                self.engine, [sms_event(EventType.DELIVERED, self.provider_id(m), message_id=m.message_id)]
            )
        return super().send_batch(messages)


def test_dispatcher_applies_callbacks_that_beat_its_bookkeeping(engine, tmp_path):
    from outreach.config import load_offers
    from outreach.dispatch import Dispatcher
    from outreach.planning import decide_day
    from tests.factories import add_candidates

    add_customers(engine, customer("C1"), customer("C2"))
    add_candidates(engine, DAY, ("C1", "TRAVEL_INSURANCE"), ("C2", "TRAVEL_INSURANCE"))
    offers = load_offers(OFFERS_FILE)
    decide_day(engine, DAY, offers, now=SENT_AT)
    with session_scope(engine) as session:
        ids = ledger.due_ids(session, DAY, "sms", SENT_AT + timedelta(hours=1))
    settings = Settings(database_url=str(engine.url), outbox_dir=tmp_path)
    report = Dispatcher(engine, settings, offers, CallsBackBeforeReturning(engine), "w1").send_ids(ids)
    assert report.sent == 2
    assert {status_of(engine, mid) for mid in ids} == {"delivered"}
