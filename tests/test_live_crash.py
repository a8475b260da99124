"""SIGKILL of the live consumer at random moments loses no event and duplicates no message: counted
from the broker's events, the database and the local Twilio API (several kills per trial)."""

# ruff: noqa: F811 - the fixtures imported from tests.nats_kit and tests.provider_fakes are parameters here

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from outreach.live.decide import SOURCE
from outreach.live.events import PaymentEvent
from outreach.live.tables import LiveEvent
from outreach.models import Candidate, Decision, Message
from tests.factories import add_customers, customer
from tests.nats_kit import stream  # noqa: F401
from tests.provider_fakes import twilio_server  # noqa: F401
from tests.test_live_jetstream import publish

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOON = datetime(2027, 3, 9, 11, 0, tzinfo=UTC)
CUSTOMERS = 60
SHOPPING_PER_CUSTOMER = 4


def events() -> list[bytes]:
    """Per customer one airport withdrawal among a few supermarket payments."""
    out = []
    for n in range(CUSTOMERS):
        cid = f"K{n:03d}"
        for k in range(SHOPPING_PER_CUSTOMER):
            out.append(
                PaymentEvent(
                    event_id=f"S{n}-{k}", customer_id=cid, occurred_at=NOON, amount="-23.10", mcc="5411"
                ).as_json()
            )
        out.append(
            PaymentEvent(
                event_id=f"A{n}",
                customer_id=cid,
                occurred_at=NOON,
                amount="-100.00",
                mcc="6011",
                city="Schiphol",
            ).as_json()
        )
    return out


def start_worker(db_url: str, names, twilio_url: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.live_worker",
            db_url,
            names.stream,
            names.subject,
            names.durable,
            twilio_url,
            NOON.isoformat(),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def decided_events(engine) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(LiveEvent))


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sigkill_at_random_moments_loses_no_event_and_duplicates_no_message(
    sqlite_url, stream, twilio_server, seed
):
    from outreach.db import make_engine

    engine = make_engine(sqlite_url)
    add_customers(engine, *(customer(f"K{n:03d}", mobile=f"+3161{n:07d}") for n in range(CUSTOMERS)))
    asyncio.run(publish(stream, events()))
    rng = random.Random(seed)
    kills = 0
    while kills < 4:
        worker = start_worker(sqlite_url, stream, twilio_server.url)
        assert worker.stdout.readline().strip() == "ready"
        before = decided_events(engine)
        if before >= CUSTOMERS:
            worker.kill()
            worker.wait()
            break
        # kill once it is working: somewhere in a batch, its commit, its acks or its hand-off
        wait_for(lambda b=before: decided_events(engine) > b, 30, "the worker made no progress")
        time.sleep(rng.uniform(0.0, 0.4))
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
        kills += 1
    # a last worker finishes the stream (redeliveries after ack_wait) and the left-over sends
    worker = start_worker(sqlite_url, stream, twilio_server.url)
    try:
        assert worker.stdout.readline().strip() == "ready"

        def settled() -> bool:
            with engine.connect() as conn:
                planned = conn.scalar(
                    select(func.count()).select_from(Message).where(Message.status == "planned")
                )
            return decided_events(engine) == CUSTOMERS and planned == 0

        wait_for(settled, 60, "the stream was not drained")
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    assert kills >= 1
    with engine.connect() as conn:
        candidates = conn.scalar(
            select(func.count()).select_from(Candidate).where(Candidate.source == SOURCE)
        )
        decisions = conn.scalar(select(func.count()).select_from(Decision))
        statuses = dict(conn.execute(select(Message.status, func.count()).group_by(Message.status)).all())
    # no event lost: each airport withdrawal decided exactly once (two offers each), one SMS each
    assert (candidates, decisions) == (2 * CUSTOMERS, 2 * CUSTOMERS)
    assert sum(statuses.values()) == CUSTOMERS
    # no message twice: the provider got at most one per customer, every ledger "sent" among them;
    # a kill in the middle of a hand-off leaves that message in doubt ("sending"), for reconciliation
    received = twilio_server.sent_to()
    assert max(received.values()) == 1
    in_doubt = statuses.get("sending", 0) + statuses.get("unknown", 0)
    assert statuses.get("sent", 0) <= len(received) <= statuses.get("sent", 0) + in_doubt
    assert statuses.get("sent", 0) + in_doubt == CUSTOMERS
