"""The live lane against the real broker (NATS JetStream on this machine) and the local Twilio API:
an airport withdrawal becomes one SMS, redeliveries and replays add nothing, poison goes to the
dead-letter subject without blocking the stream."""

# ruff: noqa: F811 - the fixtures imported from tests.nats_kit and tests.provider_fakes are parameters here

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from outreach.config import Settings
from outreach.live.events import PaymentEvent
from outreach.live.jetstream import DEFAULT_URL, JetStreamSink
from outreach.live.runner import open_consumer
from outreach.models import Message
from tests.factories import add_consent, add_customers, customer
from tests.fixture_files import OFFERS_FILE
from tests.nats_kit import stream  # noqa: F401  (fixture)
from tests.provider_fakes import sms_adapter, twilio_server  # noqa: F401  (fixture)

REPO = Path(__file__).resolve().parent.parent
NOON = datetime(2027, 3, 9, 11, 0, tzinfo=UTC)  # a Tuesday, 12:00 in Amsterdam: SMS window open


def settings_for(engine) -> Settings:
    return Settings(
        database_url=engine.url.render_as_string(hide_password=False),
        offers_file=OFFERS_FILE,
        templates_dir=REPO / "templates",
        _env_file=None,
    )


def clock_from(start: datetime):
    began = time.monotonic()
    return lambda: start + timedelta(seconds=time.monotonic() - began)


def withdrawal(event_id: str, customer_id: str, at: datetime = NOON) -> bytes:
    return PaymentEvent(
        event_id=event_id,
        customer_id=customer_id,
        occurred_at=at,
        amount="-200.00",
        mcc="6011",
        description="Geldautomaat",
        city="Schiphol",
    ).as_json()


async def publish(names, events: list[bytes]) -> None:
    sink = await JetStreamSink.open(DEFAULT_URL, names)
    try:
        await sink.publish(events)
    finally:
        await sink.close()


async def consume(engine, names, server, until, *, timeout: float = 30.0):
    """Run a consumer until ``until(consumer)`` holds; returns its stats."""
    consumer = await open_consumer(
        settings_for(engine),
        DEFAULT_URL,
        names,
        channels={"sms": sms_adapter(server)},
        clock=clock_from(NOON),
        batch_seconds=0.05,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    deadline = time.monotonic() + timeout
    try:
        while not until(consumer):
            assert time.monotonic() < deadline, consumer.stats.line()
            assert not task.done(), task.exception()
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await task
        await consumer.source.close()
    return consumer.stats


def sent_count(engine) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(Message).where(Message.status == "sent"))


def test_an_airport_withdrawal_becomes_one_sms_in_the_ledger(engine, stream, twilio_server):
    add_customers(engine, customer("C1", mobile="+31611111111"), customer("C2", mobile="+31622222222"))
    add_consent(engine, "C2", "sms", at=NOON - timedelta(days=1))  # C2 takes no texts
    asyncio.run(publish(stream, [withdrawal("T1", "C1"), withdrawal("T2", "C2")]))
    stats = asyncio.run(consume(engine, stream, twilio_server, lambda c: c.stats.triggering >= 2))
    assert stats.sent == 1
    assert twilio_server.sent_to() == {"+31611111111": 1}
    with engine.connect() as conn:
        rows = conn.execute(
            select(Message.customer_id, Message.offer_code, Message.channel, Message.status)
        ).all()
    # C2 opted out of texts: the offer's next channel, email (this test's consumer sends SMS only)
    assert sorted(tuple(r) for r in rows) == [
        ("C1", "TRAVEL_INSURANCE", "sms", "sent"),
        ("C2", "TRAVEL_INSURANCE", "email", "planned"),
    ]


def test_redelivery_and_replay_create_no_second_message(engine, stream, twilio_server):
    add_customers(engine, customer("C1", mobile="+31611111111"))
    asyncio.run(publish(stream, [withdrawal("T1", "C1"), withdrawal("T1", "C1")]))
    stats = asyncio.run(consume(engine, stream, twilio_server, lambda c: c.stats.triggering >= 2))
    assert (stats.sent, stats.duplicates) == (1, 1)
    # the bank replays the day: the same event, a new broker delivery, a new consumer
    asyncio.run(publish(stream, [withdrawal("T1", "C1")]))
    stats = asyncio.run(consume(engine, stream, twilio_server, lambda c: c.stats.triggering >= 1))
    assert (stats.sent, stats.duplicates) == (0, 1)
    assert twilio_server.sent_to() == {"+31611111111": 1}
    assert sent_count(engine) == 1


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"not json", "bad_json"),
        (b'{"event_id": "P2", "customer_id": "C1"}', "bad_schema"),
        (
            b'{"event_id": "P3", "customer_id": "C1", "occurred_at": "2027-03-09T11:00:00+00:00",'
            b' "amount": "twelve"}',
            "amount_not_a_number",
        ),
        (withdrawal("P4", "NOBODY"), "unknown_customer"),
    ],
)
def test_a_poison_event_goes_to_the_dead_letter_subject_and_the_stream_goes_on(
    engine, stream, twilio_server, data, reason
):
    add_customers(engine, customer("C1", mobile="+31611111111"))
    asyncio.run(publish(stream, [data, withdrawal("T1", "C1")]))
    stats = asyncio.run(consume(engine, stream, twilio_server, lambda c: c.stats.sent >= 1))
    assert dict(stats.poison) == {reason: 1}
    assert twilio_server.sent_to() == {"+31611111111": 1}

    async def parked():
        sink = await JetStreamSink.open(DEFAULT_URL, stream)
        try:
            return await sink.dead_letters()
        finally:
            await sink.close()

    [(headers, body)] = asyncio.run(parked())
    assert headers["Outreach-Reason"] == reason and body == data
