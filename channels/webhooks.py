"""Webhook parsing with verification, one parser per provider, behind one small interface.

The web layer has one route, ``/webhooks/{provider}/{kind}``: it builds the provider's parser from
the settings, hands it the raw request, and passes what comes back to the core. A parser first
verifies (``SignatureRejected`` -> 403: nothing was read), then parses (``WebhookPayloadError`` ->
400). Both providers now refuse the same way (Twilio's validator answers a bool; it raises here).

    provider  kind      what parse() returns
    twilio    status    [DeliveryEvent]      a status callback
    twilio    inbound   InboundSMS           STOP, START, HELP or a reply
    sendgrid  events    [DeliveryEvent]      a signed batch of email events
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import ClassVar, Protocol

from channels import sendgrid_webhooks, twilio_webhooks
from channels.errors import SignatureRejected, WebhookPayloadError
from channels.events import DeliveryEvent
from channels.twilio_webhooks import FormParams, InboundSMS


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    body: bytes
    headers: Mapping[str, str]  # case-insensitive, as the web framework gives them
    url: str  # the public URL the provider called (and signed), query included
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))


class WebhookParser(Protocol):
    provider: ClassVar[str]
    kinds: ClassVar[frozenset[str]]

    def parse(self, kind: str, request: WebhookRequest) -> list[DeliveryEvent] | InboundSMS: ...


class TwilioWebhooks:
    provider: ClassVar[str] = twilio_webhooks.PROVIDER
    kinds: ClassVar[frozenset[str]] = frozenset({"status", "inbound"})

    def __init__(self, auth_token: str) -> None:
        self._auth_token = auth_token

    def parse(self, kind: str, request: WebhookRequest) -> list[DeliveryEvent] | InboundSMS:
        try:
            params = FormParams.parse(request.body)
        except WebhookPayloadError:
            params = None  # an unreadable body cannot carry a valid signature either
        if params is None or not twilio_webhooks.verify(
            self._auth_token,
            request.url,
            params,
            request.headers.get(twilio_webhooks.SIGNATURE_HEADER),
            request.headers.get(twilio_webhooks.SIGNATURE_SETTINGS_HEADER),
        ):
            raise SignatureRejected("X-Twilio-Signature missing or wrong", provider=self.provider)
        if kind == "status":
            return [twilio_webhooks.parse_status(params, request.url, request.received_at)]
        return twilio_webhooks.parse_inbound(params, request.received_at)


class SendGridWebhooks:
    provider: ClassVar[str] = sendgrid_webhooks.PROVIDER
    kinds: ClassVar[frozenset[str]] = frozenset({"events"})

    def __init__(self, verifier: sendgrid_webhooks.Verifier) -> None:
        self._verifier = verifier

    def parse(self, kind: str, request: WebhookRequest) -> list[DeliveryEvent]:
        self._verifier.verify(
            request.body,
            request.headers.get(sendgrid_webhooks.SIGNATURE_HEADER),
            request.headers.get(sendgrid_webhooks.TIMESTAMP_HEADER),
        )
        return sendgrid_webhooks.parse_events(request.body, request.received_at)
