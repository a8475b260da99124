"""The live lane's loop: gather a micro-batch, dead-letter the poison, decide, commit, acknowledge, send.

A batch closes at ``batch_events`` events or ``batch_seconds`` after its first event, whichever
comes first. Its order of work is what the guarantees rest on:

1. poison events (unreadable, amount not a number, unknown customer) go to the dead-letter subject
   with their reason and are acknowledged there: they never block the stream;
2. the rest are decided and their event rows, candidates, decisions and ledger rows committed in
   one transaction (outreach.live.decide);
3. only then are they acknowledged — a consumer killed before this point gets them again, and the
   event rows make the second time a no-op;
4. the messages planned for now are handed to the channels through the daily lane's dispatcher
   (claims, consent re-check, forward-only ledger). A consumer killed before the hand-off leaves
   them planned: the next sweep (at start and every ``sweep_seconds``) sends them, or expires
   them as ``offer_expired`` when their event's window has passed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError

from outreach.live.decide import BatchResult, LiveDecider, live_backlog
from outreach.live.events import PaymentEvent, PoisonEvent, parse_event
from outreach.live.send import LiveSender
from outreach.live.source import Delivery, EventSource

log = logging.getLogger(__name__)


@dataclass
class LiveStats:
    started: float = field(default_factory=time.monotonic)
    events: int = 0
    batches: int = 0
    triggering: int = 0
    duplicates: int = 0
    poison: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)
    outcomes: Counter = field(default_factory=Counter)
    sent: int = 0
    expired: int = 0
    lag: int = 0

    def add(self, result: BatchResult) -> None:
        self.triggering += result.triggering
        self.duplicates += result.duplicates
        self.skipped.update(result.skipped)
        self.outcomes.update(result.outcomes)

    def rate(self) -> float:
        return self.events / max(1e-9, time.monotonic() - self.started)

    def line(self) -> str:
        planned = self.outcomes.get("planned", 0)
        return (
            f"{self.events} events ({self.rate():.0f}/s), {self.triggering} triggering, "
            f"{planned} planned, {self.sent} sent, {sum(self.outcomes.values()) - planned} held or dropped, "
            f"{self.duplicates} duplicate, {sum(self.skipped.values())} too old, {self.expired} expired, "
            f"{sum(self.poison.values())} dead-lettered, lag {self.lag}"
        )

    def as_dict(self) -> dict:
        return {
            "events": self.events,
            "events_per_second": round(self.rate(), 1),
            "batches": self.batches,
            "triggering": self.triggering,
            "duplicates": self.duplicates,
            "decisions": dict(self.outcomes),
            "skipped": dict(self.skipped),
            "dead_lettered": dict(self.poison),
            "sent": self.sent,
            "expired": self.expired,
            "lag": self.lag,
        }


class LiveConsumer:
    def __init__(
        self,
        source: EventSource,
        decider: LiveDecider,
        sender: LiveSender | None,
        *,
        batch_events: int = 500,
        batch_seconds: float = 0.2,
        sweep_seconds: float = 5.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.source = source
        self.decider = decider
        self.sender = sender
        self.batch_events = batch_events
        self.batch_seconds = batch_seconds
        self.sweep_seconds = sweep_seconds
        self.clock = clock or (lambda: datetime.now(UTC))
        self.stats = LiveStats()
        self._sending: asyncio.Task | None = None  # the previous batch's hand-off, still running
        self.windows = {
            name: rule.relevance_hours
            for name, rule in decider.triggers.by_name().items()
            if rule.relevance_hours
        }

    async def run(
        self, stop: asyncio.Event, on_batch: Callable[[LiveStats], None] | None = None
    ) -> LiveStats:
        """Consume until ``stop`` is set; the batch in hand is finished (committed, acknowledged)."""
        await self.sweep()
        last_sweep = time.monotonic()
        try:
            await self._loop(stop, on_batch, last_sweep)
        finally:
            await self._handed_off()
        return self.stats

    async def _loop(self, stop: asyncio.Event, on_batch, last_sweep: float) -> None:
        while not stop.is_set():
            deliveries = await self._gather(stop)
            if deliveries:
                await self.process(deliveries)
                if on_batch:
                    on_batch(self.stats)
            if time.monotonic() - last_sweep >= self.sweep_seconds:
                await self.sweep()
                self.stats.lag = await self.source.lag()
                last_sweep = time.monotonic()
                if on_batch and not deliveries:
                    on_batch(self.stats)

    async def _gather(self, stop: asyncio.Event) -> list[Delivery]:
        """One micro-batch: up to ``batch_events``, for at most ``batch_seconds``."""
        return await self.source.fetch(self.batch_events, timeout=self.batch_seconds)

    async def process(self, deliveries: list[Delivery]) -> BatchResult:
        self.stats.batches += 1
        self.stats.events += len(deliveries)
        good: list[tuple[Delivery, PaymentEvent]] = []
        for delivery in deliveries:
            try:
                good.append((delivery, parse_event(delivery.data)))
            except PoisonEvent as poison:
                await self._dead_letter(delivery, poison)
        unknown = await asyncio.to_thread(self.decider.unknown_customers, {e.customer_id for _, e in good})
        if unknown:
            kept = []
            for delivery, event in good:
                if event.customer_id in unknown:
                    await self._dead_letter(delivery, PoisonEvent("unknown_customer", "customer_id"))
                else:
                    kept.append((delivery, event))
            good = kept
        events = [e for _, e in good]
        result = await asyncio.to_thread(self._decide, events)
        await self.source.ack([d for d, _ in good])  # committed: safe to forget
        self.stats.add(result)
        if self.sender and result.to_send:
            # the hand-off runs while the next batch is gathered and decided: one in flight at a time
            await self._handed_off()
            self._sending = asyncio.create_task(self._send(result.to_send))
        return result

    async def _send(self, to_send: dict[str, list[int]]) -> None:
        report = await asyncio.to_thread(self.sender.send, to_send)
        self.stats.sent += report.sent

    async def _handed_off(self) -> None:
        if self._sending is not None:
            task, self._sending = self._sending, None
            await task

    def _decide(self, events: list[PaymentEvent]) -> BatchResult:
        try:
            return self.decider.decide(events, self.clock())
        except IntegrityError:
            # another consumer of the group committed one of these events first: decide again,
            # now finding it a duplicate
            log.info("live batch raced another consumer; deciding again")
            return self.decider.decide(events, self.clock())

    async def _dead_letter(self, delivery: Delivery, poison: PoisonEvent) -> None:
        self.stats.poison[poison.reason] += 1
        await self.source.dead_letter(delivery, poison.reason, poison.detail)

    async def sweep(self) -> None:
        """Send live messages left planned (a crash before the hand-off, a held one now due) and
        expire those whose event's window has passed."""
        if self.sender is None:
            return
        await self._handed_off()  # what the last batch planned is not backlog
        expired, due = await asyncio.to_thread(live_backlog, self.decider.engine, self.clock(), self.windows)
        if expired:
            self.stats.expired += await asyncio.to_thread(self.sender.expire, expired)
        if due:
            report = await asyncio.to_thread(self.sender.send, due)
            self.stats.sent += report.sent
