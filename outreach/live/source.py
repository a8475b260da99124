"""The one small interface a payment-event broker implements (JetStream: outreach/live/jetstream.py).

The consumer owns the loop; a source only fetches, acknowledges and dead-letters. Delivery is
at least once: an event not acknowledged (the consumer died before its batch was committed) comes
back, and the live lane's idempotency (outreach/live/tables.py) makes the second time harmless.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass
class Delivery:
    data: bytes
    handle: Any  # the broker's own message object, for ack / dead-letter
    redelivered: bool = False


class EventSource(Protocol):
    async def fetch(self, max_events: int, timeout: float) -> list[Delivery]:
        """Up to ``max_events`` deliveries, waiting at most ``timeout`` seconds for the first."""

    async def ack(self, deliveries: list[Delivery]) -> None:
        """The deliveries' effects are committed: never deliver them again."""

    async def dead_letter(self, delivery: Delivery, reason: str, detail: str) -> None:
        """Park a poison event with its reason where an operator can read it, then acknowledge it."""

    async def lag(self) -> int:
        """Events published but not yet acknowledged by this consumer group."""

    async def close(self) -> None: ...


class EventSink(Protocol):
    """Where ``outreach events replay`` publishes (the bank's side, for demos and benchmarks)."""

    async def publish(self, events: list[bytes]) -> None: ...

    async def close(self) -> None: ...
