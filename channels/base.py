"""The channel contract: what every adapter does, what some may do, and the message they send.

Modelled on django-anymail: a small required interface (``send_batch``, ``close``) plus optional
capabilities an adapter *declares* in ``capabilities``; callers ask ``supports(...)`` instead of
probing for methods, and an undeclared capability raises UnsupportedCapability.

    Capability.SEND           send_batch(messages) -> BatchOutcome          every channel
    Capability.RECONCILE      reconcile(messages, sent_after), reconcile_settle
                              did the provider get these in-doubt messages?
    Capability.STATUS_LOOKUP  fetch_status(sent) -> StatusOutcome   what the provider says now
    Capability.WEBHOOKS       the provider calls us back; ``channels.webhooks`` verifies and parses

``channels.pooled.PooledChannel`` owns what the HTTP adapters share (the pool, an SDK client per
thread, the classified retries, outcome aggregation, close).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, ClassVar, Protocol, runtime_checkable

from channels.errors import ChannelError

if TYPE_CHECKING:
    from channels.events import DeliveryEvent


class Capability(StrEnum):
    SEND = "send"
    RECONCILE = "reconcile"
    STATUS_LOOKUP = "status_lookup"
    WEBHOOKS = "webhooks"


class UnsupportedCapability(ChannelError):
    """Asked for a capability the adapter does not declare (anymail's AnymailUnsupportedFeature)."""


@dataclass(frozen=True, slots=True)
class Address:
    name: str
    street: str
    house_number: str
    postal_code: str
    city: str
    country: str = "NL"

    def lines(self) -> list[str]:
        return [self.name, f"{self.street} {self.house_number}", f"{self.postal_code}  {self.city.upper()}"]


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One rendered message, ready for a provider. ``message_id`` is our ledger id."""

    message_id: str
    channel: str
    customer_id: str
    offer_code: str
    run_date: date
    to: str  # E.164 phone, email address, or customer id for letters
    body: str
    subject: str | None = None
    html: str | None = None
    language: str = "nl"
    address: Address | None = None
    campaign: str | None = None
    unsubscribe_url: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SendResult:
    """What the provider said about one message it accepted."""

    message_id: str
    provider_message_id: str | None
    status: str = "sent"  # the ledger status to move to


@dataclass(slots=True)
class BatchOutcome:
    """Per message either a SendResult or the ChannelError that stopped it."""

    results: dict[str, SendResult] = field(default_factory=dict)
    errors: dict[str, Exception] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SentMessage:
    """A message a provider accepted, as a status look-up needs it: our id, the provider's id, and
    the address it went to (to tell apart one request's recipients)."""

    message_id: str
    provider_message_id: str
    to: str = ""


@dataclass(slots=True)
class StatusOutcome:
    """What a provider says now about messages it accepted (``fetch_status``): per message its
    status as a DeliveryEvent, or no record of it (``not_found``), or the ChannelError that kept
    it from answering."""

    events: dict[str, DeliveryEvent] = field(default_factory=dict)
    not_found: set[str] = field(default_factory=set)
    errors: dict[str, Exception] = field(default_factory=dict)


@runtime_checkable
class Channel(Protocol):
    kind: ClassVar[str]  # "sms" | "email" | "letter" | "call"
    provider: ClassVar[str]  # "twilio", "sendgrid", "outbox", ...
    capabilities: ClassVar[frozenset[Capability]]

    def supports(self, capability: Capability) -> bool: ...

    def send_batch(self, messages: Sequence[OutboundMessage]) -> BatchOutcome:
        """Send what it can; never raise for one message's failure, only for the whole channel."""
        ...

    def reconcile(
        self, messages: Sequence[OutboundMessage], sent_after: datetime
    ) -> dict[str, SendResult | None]: ...

    def fetch_status(self, messages: Sequence[SentMessage]) -> StatusOutcome: ...

    def close(self) -> None: ...


class BaseChannel:
    """What every adapter inherits: the declared capabilities and the refusal of the others."""

    kind: ClassVar[str] = ""
    provider: ClassVar[str] = ""
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.SEND})
    # how long after a hand-off "not found at the provider" may be believed (RECONCILE)
    reconcile_settle: timedelta = timedelta(minutes=10)

    def supports(self, capability: Capability) -> bool:
        return capability in self.capabilities

    def send_batch(self, messages: Sequence[OutboundMessage]) -> BatchOutcome:
        raise NotImplementedError

    def reconcile(
        self, messages: Sequence[OutboundMessage], sent_after: datetime
    ) -> dict[str, SendResult | None]:
        """Did the provider get these in-doubt messages? SendResult if so, None if verifiably not."""
        raise UnsupportedCapability(f"{self.provider} {self.kind} cannot reconcile", provider=self.provider)

    def fetch_status(self, messages: Sequence[SentMessage]) -> StatusOutcome:
        """What the provider says now about messages it accepted."""
        raise UnsupportedCapability(
            f"{self.provider} {self.kind} cannot look up statuses", provider=self.provider
        )

    def close(self) -> None:
        """Release what the adapter holds; safe to call twice."""
