"""SendGrid signed Event Webhook: ECDSA verification over the raw body, events normalised.

SendGrid posts a JSON array of events, batched (up to ~768 KB or every 30 s), retries non-2xx
for up to 24 h and may repeat events; the store de-duplicates, this module only translates.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from sendgrid.helpers.eventwebhook import EventWebhook
from sendgrid.helpers.eventwebhook.eventwebhook_header import EventWebhookHeader

from channels.errors import ConfigurationError, SignatureRejected, WebhookPayloadError
from channels.events import DeliveryEvent, EventType, Reason

PROVIDER = "sendgrid"
SIGNATURE_HEADER = EventWebhookHeader.SIGNATURE
TIMESTAMP_HEADER = EventWebhookHeader.TIMESTAMP
# our ledger id travels in custom_args and comes back as a top-level key of every event
MESSAGE_ID_ARG = "outreach_id"

EVENTS: dict[str, EventType] = {
    "processed": EventType.QUEUED,
    "deferred": EventType.DEFERRED,
    "delivered": EventType.DELIVERED,
    "bounce": EventType.BOUNCED,
    "dropped": EventType.REJECTED,
    "open": EventType.OPENED,
    "click": EventType.CLICKED,
    "spamreport": EventType.COMPLAINED,
    "unsubscribe": EventType.OPTED_OUT,
    "group_unsubscribe": EventType.OPTED_OUT,
    "group_resubscribe": EventType.SUBSCRIBED,
}
CONSENT = {
    "spamreport": "opt_out",
    "unsubscribe": "opt_out",
    "group_unsubscribe": "opt_out",
    "group_resubscribe": "opt_in",
}
# SendGrid's reasons for dropping a message without trying (docs.sendgrid.com/glossary/drops):
# the address is on one of the account's suppression lists, or the message itself is refused.
# Matched whole (case-insensitive): "Invalid SMTPAPI header" is about our request, not the address.
DROP_REASONS: dict[str, Reason] = {
    "unsubscribed address": Reason.OPTED_OUT,  # global or group unsubscribe list
    "spam reporting address": Reason.OPTED_OUT,  # the recipient reported us as spam before
    "bounced address": Reason.BOUNCED,  # the address hard-bounced before
    "invalid": Reason.INVALID,  # on the invalid emails list
    "spam content": Reason.BLOCKED,  # SendGrid's spam checker refused this content
    "invalid smtpapi header": Reason.OTHER,
    "recipient list over package quota": Reason.OTHER,
}
# what a drop says about the recipient's wishes: the consent record to make, and its source
DROP_CONSENT = {
    "unsubscribed address": "sendgrid:dropped:unsubscribed",
    "spam reporting address": "sendgrid:dropped:spam_report",
}


class Verifier:
    """Checks SendGrid's signature header over ``timestamp + raw body`` with the account's public key."""

    def __init__(self, public_key: str, tolerance_seconds: int = 600) -> None:
        try:
            self._webhook = EventWebhook(public_key.strip())
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(
                "OUTREACH_SENDGRID_WEBHOOK_PUBLIC_KEY is not a base64 EC public key", provider=PROVIDER
            ) from exc
        self.tolerance_seconds = tolerance_seconds

    def verify(self, body: bytes, signature: str | None, timestamp: str | None, now: datetime | None = None):
        if not signature or not timestamp:
            raise SignatureRejected("missing signature or timestamp header")
        try:
            sent_at = int(timestamp.strip())
        except ValueError as exc:
            raise SignatureRejected("timestamp header is not a Unix time") from exc
        age = (now or datetime.now(UTC)).timestamp() - sent_at
        if abs(age) > self.tolerance_seconds:
            raise SignatureRejected(
                f"timestamp is {int(age)} s from now (tolerance {self.tolerance_seconds} s)"
            )
        try:
            payload = body.decode("utf-8")
            valid = self._webhook.verify_signature(payload, signature.strip(), timestamp.strip())
        except (ValueError, InvalidSignature) as exc:  # bad base64 / DER, or a body that is not UTF-8
            raise SignatureRejected("signature is malformed") from exc
        if not valid:
            raise SignatureRejected("signature does not match the body")


def _drop_key(text: str) -> str:
    return " ".join(text.lower().replace("_", " ").split()).rstrip(".")


def _drop_reason(text: str) -> Reason:
    return DROP_REASONS.get(_drop_key(text), Reason.OTHER)


def _timestamp(value: object, received_at: datetime) -> datetime:
    try:
        return datetime.fromtimestamp(int(value), UTC)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError, OSError):
        return received_at


def parse_event(item: dict, received_at: datetime) -> DeliveryEvent:
    name = str(item.get("event", ""))
    event_type = EVENTS.get(name, EventType.UNKNOWN)
    reason = None
    description = None
    if name == "bounce":
        # "blocked" is a refusal of this message (reputation, content), not a dead address
        reason = Reason.BLOCKED if item.get("type") == "blocked" else Reason.BOUNCED
        description = str(item.get("reason") or item.get("status") or "") or None
    elif name == "dropped":
        description = str(item.get("reason") or "") or None
        reason = _drop_reason(description or "")
    elif name == "deferred":
        description = str(item.get("response") or "") or None
    metadata = {"event": name}
    if item.get("email"):
        metadata["recipient"] = str(item["email"])
    if name in CONSENT:
        metadata["consent"] = CONSENT[name]
        metadata["consent_source"] = f"sendgrid:{name}"
    elif name == "dropped" and (source := DROP_CONSENT.get(_drop_key(description or ""))):
        # SendGrid refused because the recipient objected earlier: our registry must agree, even
        # when that objection reached SendGrid but never us (an unsubscribe event we lost)
        metadata["consent"] = "opt_out"
        metadata["consent_source"] = source
    if item.get("asm_group_id") is not None:
        metadata["asm_group_id"] = str(item["asm_group_id"])
    our_id = item.get(MESSAGE_ID_ARG)
    return DeliveryEvent(
        type=event_type,
        channel="email",
        provider=PROVIDER,
        message_id=str(our_id) if our_id not in (None, "") else None,
        provider_message_id=str(item["sg_message_id"]) if item.get("sg_message_id") else None,
        timestamp=_timestamp(item.get("timestamp"), received_at),
        reason=reason,
        description=description,
        event_id=str(item["sg_event_id"]) if item.get("sg_event_id") else None,
        metadata=metadata,
        raw=item,
    )


def parse_events(body: bytes, received_at: datetime | None = None) -> list[DeliveryEvent]:
    received_at = received_at or datetime.now(UTC)
    try:
        items = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WebhookPayloadError(f"body is not JSON: {exc}") from exc
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise WebhookPayloadError("body is not a JSON array of event objects")
    return [parse_event(item, received_at) for item in items]
