"""``outreach events replay``: the synthetic bank's transactions published as payment events.

Transactions are read oldest first with each customer's running balance (the balance triggers
need ``balance_after``) and published at a steady rate. By default each event is stamped with the
moment it is published — a replay is a demo of *now* — so travel triggers fall inside their
relevance window; ``keep_time`` publishes the original booking times instead.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import Engine, select

from outreach.live.events import PaymentEvent
from outreach.live.source import EventSink
from outreach.models import Transaction

TICK = 0.05  # seconds between publishing slices: smooth enough, few wake-ups


def transaction_events(engine: Engine, limit: int | None = None, chunk: int = 5000) -> Iterator[PaymentEvent]:
    """Every transaction as an event (booking time kept), oldest first, with the balance after it."""
    t = Transaction
    stmt = select(
        t.transaction_id,
        t.customer_id,
        t.booked_at,
        t.amount,
        t.mcc,
        t.description,
        t.city,
        t.counterparty_name,
    ).order_by(t.booked_at, t.transaction_id)
    if limit:
        stmt = stmt.limit(limit)
    balances: dict[str, Decimal] = {}
    with engine.connect() as conn:
        rows = conn.execution_options(stream_results=True, yield_per=chunk).execute(stmt)
        for row in rows:
            balance = balances.get(row.customer_id, Decimal(0)) + Decimal(row.amount)
            balances[row.customer_id] = balance
            booked = row.booked_at if row.booked_at.tzinfo else row.booked_at.replace(tzinfo=UTC)
            yield PaymentEvent(
                event_id=row.transaction_id,
                customer_id=row.customer_id,
                occurred_at=booked,
                amount=Decimal(row.amount),
                mcc=row.mcc,
                description=row.description,
                city=row.city,
                counterparty_name=row.counterparty_name,
                balance_after=balance,
            )


@dataclass
class ReplayReport:
    published: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.published / max(self.seconds, 1e-9)


async def replay(
    sink: EventSink,
    events: Iterator[PaymentEvent],
    rate: float,
    *,
    keep_time: bool = False,
    on_progress: Callable[[int], None] | None = None,
) -> ReplayReport:
    """Publish ``events`` at ``rate`` per second (0: as fast as the broker takes them)."""
    started = time.monotonic()
    published = 0
    per_tick = min(1000, max(1, round(rate * TICK))) if rate > 0 else 1000
    while True:
        batch = []
        for event in events:
            if not keep_time:
                event = event.model_copy(update={"occurred_at": datetime.now(UTC)})
            batch.append(event.as_json())
            if len(batch) >= per_tick:
                break
        if not batch:
            break
        await sink.publish(batch)
        published += len(batch)
        if on_progress:
            on_progress(published)
        if rate > 0:  # keep to the schedule: the n-th event goes out at n / rate
            ahead = published / rate - (time.monotonic() - started)
            if ahead > 0:
                await asyncio.sleep(ahead)
    return ReplayReport(published, time.monotonic() - started)
