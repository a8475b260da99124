"""The one normalised delivery-event vocabulary every channel maps onto."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class EventType(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    DEFERRED = "deferred"
    UNDELIVERED = "undelivered"
    BOUNCED = "bounced"
    REJECTED = "rejected"
    FAILED = "failed"
    OPENED = "opened"
    CLICKED = "clicked"
    REPLIED = "replied"
    OPTED_OUT = "opted_out"
    SUBSCRIBED = "subscribed"  # opted back in (e.g. a SendGrid group resubscribe)
    COMPLAINED = "complained"
    UNKNOWN = "unknown"


class Reason(StrEnum):
    INVALID = "invalid"
    BOUNCED = "bounced"
    BLOCKED = "blocked"
    OPTED_OUT = "opted_out"
    TIMED_OUT = "timed_out"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class DeliveryEvent:
    type: EventType
    channel: str
    provider: str
    message_id: str | None  # our ledger id when known
    provider_message_id: str | None
    timestamp: datetime  # aware UTC
    reason: Reason | None = None
    description: str | None = None
    event_id: str | None = None  # provider's id: the store is idempotent on (provider, event_id)
    metadata: Mapping[str, str] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)
