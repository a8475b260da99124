"""Reconciliation of ``sent`` messages whose final status never came: the real SDKs ask the local
provider servers (Twilio: fetch by SID; SendGrid: the Email Activity API) and the answers move the
ledger through the webhook path (stored once, forward only), on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from channels.base import OutboundMessage, SentMessage
from channels.errors import ConfigurationError
from channels.twilio_sms import TwilioSMS
from channels.twilio_webhooks import FormParams, parse_status
from outreach import tracking
from outreach.config import Settings
from outreach.db import session_scope
from outreach.models import DeliveryEventRecord, Message
from outreach.reconcile import reconcile
from outreach_dev.fakes.sendgrid_server import SendGridServer
from outreach_dev.fakes.twilio_server import TwilioServer
from tests.factories import add_customers, customer
from tests.provider_fakes import SENDER, SleepRecorder, email_adapter, mail, phone, sms, sms_adapter
from tests.webhook_kit import SENT_AT, add_message, count, message

NOW = SENT_AT + timedelta(hours=3)  # past older_than (2 h), not yet past flag_after (24 h)
WINDOW = {"older_than": timedelta(hours=2), "flag_after": timedelta(hours=24)}
UNKNOWN_SID = "SM" + "f" * 32  # well formed, never created


def ledger_rows(engine, channel: str, numbers: list[int]) -> dict[int, int]:
    """Customers C<n> and a ``sent`` ledger row each (sent at SENT_AT); n -> message id."""
    add_customers(
        engine, *[customer(f"C{n}", mobile=phone(n), email=f"klant{n}@example.nl") for n in numbers]
    )
    return {n: add_message(engine, f"C{n}", channel=channel, provider_id="pending") for n in numbers}


def record_provider_ids(engine, ids: dict[int, str]) -> None:
    with session_scope(engine) as session:
        for mid, provider_id in ids.items():
            session.execute(update(Message).where(Message.id == mid).values(provider_id=provider_id))


def with_id(message: OutboundMessage, mid: int) -> OutboundMessage:
    return replace(message, message_id=str(mid))


def wait_until_final(server: TwilioServer, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not all(m.current()[2] for m in server.messages.values()):
        assert time.monotonic() < deadline, "the fake never finished its messages"
        time.sleep(0.01)


def send_and_finish(engine, twilio: TwilioServer, ids: dict[int, int]) -> None:
    """Send C<n>'s SMS through the real adapter and wait until the fake has finished them."""
    adapter = sms_adapter(twilio)
    sent = adapter.send_batch([with_id(sms(n), mid) for n, mid in ids.items()])
    adapter.close()
    record_provider_ids(engine, {int(k): r.provider_message_id for k, r in sent.results.items()})
    wait_until_final(twilio)


def asking(twilio: TwilioServer, asked: list[list[str]]):
    """An adapter factory whose status look-ups note the message ids of each call."""

    def adapter_for(channel: str) -> TwilioSMS:
        real = sms_adapter(twilio)
        fetch = real.fetch_status
        real.fetch_status = lambda messages: asked.append([m.message_id for m in messages]) or fetch(messages)
        return real

    return adapter_for


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def twilio():
    server = TwilioServer(
        strict=True,
        callbacks=True,
        callback_delay=0.01,
        undeliverable={phone(2)},
        outcomes={phone(3): ("failed", 30008)},
    )
    with server:
        server.set_faults(lost_callbacks=1.0)  # Twilio advances the messages, we never hear of it
        yield server


def test_sms_whose_callbacks_were_lost_are_settled_by_fetching_their_status(engine, twilio):
    ids = ledger_rows(engine, "sms", [1, 2, 3, 4])
    adapter = sms_adapter(twilio)
    sent = adapter.send_batch([with_id(sms(n), ids[n]) for n in (1, 2, 3)])
    adapter.close()
    assert not sent.errors
    record_provider_ids(engine, {int(k): r.provider_message_id for k, r in sent.results.items()})
    record_provider_ids(engine, {ids[4]: UNKNOWN_SID})  # Twilio has no such message
    wait_until_final(twilio)
    assert [outcome for _, outcome in twilio.callback_results] == ["lost"] * 5  # sent+final, failed alone

    report = reconcile(engine, Settings(), adapter_for=lambda ch: sms_adapter(twilio), now=NOW, **WINDOW)

    rows = {n: message(engine, ids[n]) for n in ids}
    assert (rows[1].status, rows[1].last_error_code) == ("delivered", None)
    assert (rows[2].status, rows[2].last_error_code) == ("undelivered", "30003")
    assert (rows[3].status, rows[3].last_error_code) == ("failed", "30008")
    assert "Unknown error" in rows[3].last_error
    assert rows[4].status == "sent" and rows[4].last_error_code is None  # not found: nothing guessed
    assert (report.stuck, report.status_asked, report.status_fetched) == (4, 4, 3)
    assert (report.finalised, report.status_missing, report.status_failed, report.flagged) == (3, 1, 0, 0)
    fetches = [r for r in twilio.requests if r.method == "GET"]
    assert len(fetches) == 4 and sorted(r.status for r in fetches) == [200, 200, 200, 404]
    assert all(not r.spec_errors for r in twilio.requests)  # requests and answers as the spec says
    stored = count(engine, DeliveryEventRecord)
    assert stored == 3

    # the callback that was lost arrives after all: the same event (SID, status), stored once
    late = parse_status(
        FormParams({"MessageSid": [rows[1].provider_id], "MessageStatus": ["delivered"], "To": [phone(1)]})
    )
    with session_scope(engine) as session:
        assert tracking.ingest(session, [late]).duplicates == 1

    again = reconcile(engine, Settings(), adapter_for=lambda ch: sms_adapter(twilio), now=NOW, **WINDOW)
    assert (again.stuck, again.status_asked, again.finalised, again.status_missing) == (1, 1, 0, 1)
    assert count(engine, DeliveryEventRecord) == stored  # a rerun adds nothing

    later = reconcile(
        engine,
        Settings(),
        adapter_for=lambda ch: sms_adapter(twilio),
        now=SENT_AT + timedelta(hours=25),
        **WINDOW,
    )
    assert later.flagged == 1
    assert (message(engine, ids[4]).status, message(engine, ids[4]).last_error_code) == ("sent", "stuck")


def test_a_status_that_is_not_final_leaves_the_message_open(engine):
    with TwilioServer(strict=True, callback_delay=3600) as slow:  # stays queued for an hour
        ids = ledger_rows(engine, "sms", [1])
        adapter = sms_adapter(slow)
        sent = adapter.send_batch([with_id(sms(1), ids[1])])
        adapter.close()
        record_provider_ids(engine, {ids[1]: sent.results[str(ids[1])].provider_message_id})
        report = reconcile(engine, Settings(), adapter_for=lambda ch: sms_adapter(slow), now=NOW, **WINDOW)
    assert (report.status_fetched, report.finalised) == (1, 0)
    assert message(engine, ids[1]).status == "sent"
    with session_scope(engine) as session:
        assert session.scalars(select(DeliveryEventRecord.event_type)).all() == ["queued"]


def test_twilio_rate_limit_on_a_fetch_is_waited_out(twilio, sleeps):
    adapter = sms_adapter(twilio, sleeps)
    sent = adapter.send_batch([sms(1)])
    wait_until_final(twilio)
    twilio.set_faults(script=["429"], only_sends=False, retry_after=1.5)
    outcome = adapter.fetch_status([SentMessage("1", sent.results["1"].provider_message_id)])
    adapter.close()
    assert str(outcome.events["1"].type) == "delivered" and not outcome.errors
    assert sleeps.calls and sleeps.calls[0] >= 1.5
    assert [r.status for r in twilio.requests if r.method == "GET"] == [429, 200]


def test_twilio_wrong_credentials_stop_the_fetches(twilio):
    adapter = TwilioSMS(twilio.account_sid, "wrong-token", from_=SENDER, api_url=twilio.url, concurrency=1)
    outcome = adapter.fetch_status([SentMessage(str(n), f"SM{n:032x}") for n in range(6)])
    adapter.close()
    assert set(outcome.errors) == {str(n) for n in range(6)}
    assert all(isinstance(e, ConfigurationError) for e in outcome.errors.values())
    assert len([r for r in twilio.requests if r.method == "GET"]) < 6  # stopped, not asked six times


@pytest.mark.parametrize("provider", ["twilio", "sendgrid"])
def test_a_provider_that_keeps_failing_is_reported_not_fatal(engine, sleeps, provider):
    channel = "sms" if provider == "twilio" else "email"
    server = (
        TwilioServer(strict=True, callback_delay=0.01)
        if provider == "twilio"
        else SendGridServer(strict=True)
    )
    with server:
        ids = ledger_rows(engine, channel, [1, 2])
        make = (
            (lambda: sms_adapter(server, sleeps))
            if provider == "twilio"
            else (lambda: email_adapter(server, sleeps))
        )
        adapter = make()
        sent = adapter.send_batch(
            [with_id((sms if provider == "twilio" else mail)(n), ids[n]) for n in (1, 2)]
        )
        adapter.close()
        record_provider_ids(engine, {int(k): r.provider_message_id for k, r in sent.results.items()})
        time.sleep(0.05)
        server.set_faults(script=["500"] * 20, only_sends=False)  # every read fails, retries too
        report = reconcile(
            engine, Settings(), adapter_for=lambda ch: make(), channels=(channel,), now=NOW, **WINDOW
        )
    assert (report.status_asked, report.status_failed, report.finalised) == (2, 2, 0)
    assert "status fetch failed" in report.not_looked_up[channel]
    assert "500" in report.not_looked_up[channel]
    assert all(message(engine, mid).status == "sent" for mid in ids.values())
    assert len(sleeps.calls) >= 3  # a GET's 5xx is retried (it creates nothing), then reported


def test_sendgrid_activity_settles_sent_mails_and_leaves_processing_ones_open(engine, sleeps):
    server = SendGridServer(strict=True, bounces={"klant2@example.nl"}, pending={"klant3@example.nl"})
    with server:
        ids = ledger_rows(engine, "email", [1, 2, 3, 4])
        adapter = email_adapter(server, sleeps)
        sent = adapter.send_batch([with_id(mail(n), ids[n]) for n in (1, 2, 3)])
        adapter.close()
        assert not sent.errors
        record_provider_ids(engine, {int(k): r.provider_message_id for k, r in sent.results.items()})
        record_provider_ids(engine, {ids[4]: "never-sent-id"})
        server.set_faults(script=["429"], only_sends=False, retry_after=0.5)  # the first query is refused
        report = reconcile(
            engine, Settings(), adapter_for=lambda ch: email_adapter(server, sleeps), now=NOW, **WINDOW
        )
        again = reconcile(
            engine, Settings(), adapter_for=lambda ch: email_adapter(server, sleeps), now=NOW, **WINDOW
        )
        queries = [r for r in server.requests if r.method == "GET"]
    rows = {n: message(engine, ids[n]) for n in ids}
    assert rows[1].status == "delivered"
    assert (rows[2].status, rows[2].last_error_code) == ("undelivered", "other")
    assert rows[3].status == "sent" and rows[4].status == "sent"  # processed: open; not in the feed: open
    assert (report.status_asked, report.status_fetched, report.finalised, report.status_missing) == (
        4,
        3,
        2,
        1,
    )
    assert sleeps.calls and sleeps.calls[0] >= 0.5 and [r.status for r in queries[:2]] == [429, 200]
    assert (again.stuck, again.status_fetched, again.finalised) == (2, 1, 0)
    with session_scope(engine) as session:
        kinds = sorted(session.scalars(select(DeliveryEventRecord.event_type)).all())
    assert kinds == ["delivered", "queued", "undelivered"]  # the rerun stored nothing twice


def test_channels_without_a_status_look_up_are_named(engine, tmp_path):
    ids = ledger_rows(engine, "sms", [1])
    record_provider_ids(engine, {ids[1]: "outbox-1"})
    settings = Settings(outbox_dir=tmp_path / "outbox")
    report = reconcile(engine, settings, channels=("sms",), now=SENT_AT + timedelta(hours=25), **WINDOW)
    assert report.not_looked_up == {"sms": "OutboxSMS offers no fetch_status()"}
    assert (report.status_asked, report.flagged) == (0, 1)


def test_the_backlog_is_read_in_chunks(engine, twilio, monkeypatch):
    monkeypatch.setattr("outreach.reconcile.CHUNK", 2)
    ids = ledger_rows(engine, "sms", [1, 2, 3, 4, 5])
    send_and_finish(engine, twilio, ids)
    asked: list[list[str]] = []
    report = reconcile(engine, Settings(), adapter_for=asking(twilio, asked), now=NOW, **WINDOW)
    assert [len(chunk) for chunk in asked] == [2, 2, 1] and (report.stuck, report.finalised) == (5, 5)


def test_messages_open_longer_than_ask_for_are_flagged_not_asked_again(engine, twilio):
    ids = ledger_rows(engine, "sms", [1])
    old = add_message(
        engine,
        "C1",
        channel="sms",
        provider_id=UNKNOWN_SID,
        sent_at=SENT_AT - timedelta(days=8),
        run_date=(SENT_AT - timedelta(days=8)).date(),
    )
    send_and_finish(engine, twilio, ids)
    asked: list[list[str]] = []
    report = reconcile(
        engine, Settings(), adapter_for=asking(twilio, asked), now=NOW, ask_for=timedelta(days=7), **WINDOW
    )
    assert asked == [[str(ids[1])]]  # the eight-day-old message is not asked about
    assert (report.finalised, report.past_asking, report.flagged) == (1, 1, 1)
    assert message(engine, old).status == "sent" and message(engine, old).last_error_code == "stuck"
