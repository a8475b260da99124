"""In-memory channels for tests, like Django's locmem email backend: real adapters whose outbox is
a list, with answers scripted per recipient. They declare every capability they can fake, so the
dispatcher and reconciliation run through them exactly as through a provider.

    channel = MemorySMS(answers={"C2": TransientError("503", code="503")})
    dispatcher.send_ids(ids)     # C2 is given back, the others land in channel.outbox
    channel.found = {"7"}        # reconcile() finds message 7 at the "provider", nothing else
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import ClassVar

from channels.base import (
    BaseChannel,
    BatchOutcome,
    Capability,
    OutboundMessage,
    SendResult,
    SentMessage,
    StatusOutcome,
)
from channels.errors import ChannelError
from channels.events import DeliveryEvent


class MemoryChannel(BaseChannel):
    provider: ClassVar[str] = "memory"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.SEND, Capability.RECONCILE, Capability.STATUS_LOOKUP}
    )
    reconcile_settle = timedelta(0)

    def __init__(
        self,
        answers: Mapping[str, Exception] | None = None,
        *,
        found: set[str] | None = None,
        statuses: Mapping[str, DeliveryEvent] | None = None,
        lookup_error: ChannelError | None = None,
    ) -> None:
        self.answers = dict(answers or {})  # customer id or message id -> the error to answer with
        self.found = found  # message ids the provider "has"; None: those it accepted
        self.statuses = dict(statuses or {})  # message id -> what fetch_status answers
        self.lookup_error = lookup_error  # raised by reconcile (a provider that cannot be asked)
        self.outbox: list[OutboundMessage] = []
        self.calls: list[str] = []  # customer ids, one per hand-off (a resend shows twice)
        self.asked: list[tuple[list[str], datetime]] = []
        self.closed = False
        self._lock = threading.Lock()  # the dispatcher may send batches from several threads

    def send_batch(self, messages: Sequence[OutboundMessage]) -> BatchOutcome:
        outcome = BatchOutcome()
        for message in messages:
            with self._lock:
                self.calls.append(message.customer_id)
            error = self.answers.get(message.message_id) or self.answers.get(message.customer_id)
            if error is not None:
                outcome.errors[message.message_id] = error
                continue
            with self._lock:
                self.outbox.append(message)
            outcome.results[message.message_id] = SendResult(message.message_id, self.provider_id(message))
        return outcome

    @staticmethod
    def provider_id(message: OutboundMessage | SentMessage) -> str:
        return f"memory-{message.message_id}"

    def reconcile(
        self, messages: Sequence[OutboundMessage], sent_after: datetime
    ) -> dict[str, SendResult | None]:
        self.asked.append(([m.message_id for m in messages], sent_after))
        if self.lookup_error is not None:
            raise self.lookup_error
        have = self.found if self.found is not None else {m.message_id for m in self.outbox}
        return {
            m.message_id: SendResult(m.message_id, self.provider_id(m)) if m.message_id in have else None
            for m in messages
        }

    def fetch_status(self, messages: Sequence[SentMessage]) -> StatusOutcome:
        outcome = StatusOutcome()
        for message in messages:
            event = self.statuses.get(message.message_id)
            if event is None:
                outcome.not_found.add(message.message_id)
            else:
                outcome.events[message.message_id] = event
        return outcome

    def close(self) -> None:
        self.closed = True


class MemorySMS(MemoryChannel):
    kind = "sms"


class MemoryEmail(MemoryChannel):
    kind = "email"


class MemoryLetter(MemoryChannel):
    kind = "letter"


class MemoryCall(MemoryChannel):
    kind = "call"
