"""The small interface every channel adapter implements, and the message it sends."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, ClassVar, Protocol, runtime_checkable

if TYPE_CHECKING:
    from channels.events import DeliveryEvent


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

    def send_batch(self, messages: Sequence[OutboundMessage]) -> BatchOutcome:
        """Send what it can; never raise for one message's failure, only for the whole channel."""
        ...

    def close(self) -> None: ...
