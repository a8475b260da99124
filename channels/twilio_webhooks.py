"""Twilio webhooks: signature check, status callbacks and inbound SMS, normalised.

Nothing here touches storage: the web layer verifies and parses, the core decides what it means.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from urllib.parse import parse_qsl

from twilio.request_validator import RequestValidator, get_signature_algorithm
from twilio.twiml.messaging_response import MessagingResponse

from channels.errors import WebhookPayloadError
from channels.events import DeliveryEvent, EventType, Reason

PROVIDER = "twilio"
SIGNATURE_HEADER = "X-Twilio-Signature"
SIGNATURE_SETTINGS_HEADER = "X-Twilio-Webhooks-Signature-Settings"
# a StatusCallback URL may carry our ledger id, so a callback matches even before the SID is stored
MESSAGE_ID_PARAM = "outreach_id"

STATUS_EVENTS: dict[str, EventType] = {
    "accepted": EventType.QUEUED,
    "scheduled": EventType.QUEUED,
    "queued": EventType.QUEUED,
    "sending": EventType.QUEUED,  # on its way to the carrier: Twilio has it, nothing more
    "sent": EventType.SENT,
    "delivered": EventType.DELIVERED,
    "undelivered": EventType.UNDELIVERED,
    "failed": EventType.FAILED,
    "read": EventType.OPENED,  # read receipts (RCS/WhatsApp): delivered and seen
    "canceled": EventType.FAILED,
}

# error codes of failed/undelivered callbacks; unlisted codes are OTHER (Twilio warns against
# programmatic logic on codes, so this only labels, it never decides a retry)
ERROR_REASONS: dict[str, Reason] = {
    "21211": Reason.INVALID,
    "21614": Reason.INVALID,
    "30005": Reason.INVALID,
    "30006": Reason.INVALID,
    "21610": Reason.OPTED_OUT,
    "30004": Reason.BLOCKED,
    "30007": Reason.BLOCKED,
    "30001": Reason.TIMED_OUT,
    "21611": Reason.TIMED_OUT,
}


class FormParams(dict[str, list[str]]):
    """Form fields with every value kept, in the shape the SDK's validator reads (``getlist``)."""

    @classmethod
    def parse(cls, body: bytes) -> FormParams:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise WebhookPayloadError("form body is not UTF-8") from exc
        params = cls()
        for key, value in parse_qsl(text, keep_blank_values=True):
            params.setdefault(key, []).append(value)
        return params

    def getlist(self, key: str) -> list[str]:
        return list(self.get(key, []))

    def first(self, key: str, default: str | None = None) -> str | None:
        values = self.get(key)
        return values[0] if values else default

    def flat(self) -> dict[str, str | list[str]]:
        return {k: v[0] if len(v) == 1 else list(v) for k, v in self.items()}


def verify(
    auth_token: str,
    url: str,
    params: FormParams,
    signature: str | None,
    signature_settings: str | None = None,
) -> bool:
    """True when ``signature`` is Twilio's over the exact public ``url`` and every received parameter."""
    if not signature or not auth_token:
        return False
    algorithm = get_signature_algorithm(signature_settings)
    return RequestValidator(auth_token).validate(url, params, signature, algorithm=algorithm)


def _query_param(url: str, name: str) -> str | None:
    query = url.partition("?")[2]
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key == name:
            return value
    return None


def parse_status(params: FormParams, url: str = "", received_at: datetime | None = None) -> DeliveryEvent:
    """One status callback as a DeliveryEvent.

    Twilio gives status callbacks no event id and no timestamp; one callback per status per
    message, so (SID, status) identifies the event and retried callbacks collapse onto it.
    """
    sid = params.first("MessageSid") or params.first("SmsSid")
    status = (params.first("MessageStatus") or params.first("SmsStatus") or "").lower()
    if not sid or not status:
        raise WebhookPayloadError("status callback without MessageSid or MessageStatus")
    return status_event(
        sid,
        status,
        params.first("ErrorCode") or None,
        message_id=_query_param(url, MESSAGE_ID_PARAM) or None,
        recipient=params.first("To"),
        timestamp=received_at or datetime.now(UTC),
        raw=params.flat(),
    )


def status_event(
    sid: str,
    status: str,
    error_code: str | None,
    *,
    message_id: str | None,
    timestamp: datetime,
    recipient: str | None = None,
    error_text: str | None = None,
    raw: Mapping[str, object] | None = None,
) -> DeliveryEvent:
    """A Twilio message status as a DeliveryEvent, whoever reported it (a callback, or a fetch by
    reconciliation): the same event id (SID, status), so both store it once."""
    status = status.lower()
    event_type = STATUS_EVENTS.get(status, EventType.UNKNOWN)
    reason = None
    if event_type in (EventType.FAILED, EventType.UNDELIVERED):
        reason = ERROR_REASONS.get(error_code or "", Reason.OTHER)
    metadata = {"status": status}
    if error_code:
        metadata["error_code"] = error_code
    if recipient:
        metadata["recipient"] = recipient
    description = f"Twilio {status}" + (f", error {error_code}" if error_code else "")
    return DeliveryEvent(
        type=event_type,
        channel="sms",
        provider=PROVIDER,
        message_id=message_id,
        provider_message_id=sid,
        timestamp=timestamp,
        reason=reason,
        description=description + (f": {error_text}" if error_text else ""),
        event_id=f"{sid}:{status}",
        metadata=metadata,
        raw=dict(raw or {}),
    )


class Intent(StrEnum):
    STOP = "stop"
    START = "start"
    HELP = "help"
    REPLY = "reply"


# whole-body keywords, case-insensitive (Twilio's rule: "Stop please" is a reply, not an opt-out)
STOP_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT", "STOPPEN", "AFMELDEN"}
)
# one step to every channel: an objection to all marketing, not only texts (the STOP reply offers it)
ALL_MARKETING_WORDS = frozenset({"STOPALL", "STOP ALLES", "STOPALLES", "STOP ALL"})
START_WORDS = frozenset({"START", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO"})
OPT_OUT_TYPES = {"STOP": Intent.STOP, "START": Intent.START, "HELP": Intent.HELP}
_TRIM = re.compile(r"^[\s\"'.!?]+|[\s\"'.!?]+$")


def classify(body: str | None, opt_out_type: str | None = None) -> Intent:
    """What an inbound text asks for; Twilio's Advanced Opt-Out verdict wins when present."""
    if opt_out_type and opt_out_type.strip().upper() in OPT_OUT_TYPES:
        return OPT_OUT_TYPES[opt_out_type.strip().upper()]
    word = _TRIM.sub("", body or "").upper()
    if word in STOP_WORDS or " ".join(word.split()) in ALL_MARKETING_WORDS:
        return Intent.STOP
    if word in START_WORDS:
        return Intent.START
    if word in HELP_WORDS:
        return Intent.HELP
    return Intent.REPLY


@dataclass(frozen=True, slots=True)
class InboundSMS:
    sid: str
    sender: str  # E.164 as Twilio sends it
    recipient: str
    body: str
    intent: Intent
    opt_out_type: str | None  # set when Twilio's Advanced Opt-Out already handled the keyword
    received_at: datetime
    raw: Mapping[str, object] = field(default_factory=dict, repr=False)


def parse_inbound(params: FormParams, received_at: datetime | None = None) -> InboundSMS:
    sid = params.first("MessageSid") or params.first("SmsSid")
    sender = params.first("From")
    if not sid or not sender:
        raise WebhookPayloadError("inbound message without MessageSid or From")
    body = params.first("Body", "") or ""
    opt_out_type = params.first("OptOutType") or None
    return InboundSMS(
        sid=sid,
        sender=sender,
        recipient=params.first("To", "") or "",
        body=body,
        intent=classify(body, opt_out_type),
        opt_out_type=opt_out_type,
        received_at=received_at or datetime.now(UTC),
        raw=params.flat(),
    )


def twiml(reply: str | None = None) -> str:
    """A TwiML answer: one message back, or an empty response (no reply)."""
    response = MessagingResponse()
    if reply:
        response.message(reply)
    return str(response)
