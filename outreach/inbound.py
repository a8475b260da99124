"""Inbound SMS: STOP and START change consent, HELP is answered, anything else is kept as a reply.

Every inbound message is stored once (by the provider's message id), so a retried webhook
changes nothing twice. An opt-out applies to every customer who has that mobile number.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from channels.events import DeliveryEvent, EventType
from channels.twilio_webhooks import ALL_MARKETING_WORDS, InboundSMS, Intent
from outreach import consent, tracking
from outreach.config import Settings
from outreach.models import Customer, InboundMessage, Message
from outreach.pii import mask_phone

log = logging.getLogger("outreach.inbound")

CONSENT_CHOICE = {Intent.STOP: "opt_out", Intent.START: "opt_in"}
EVENT_FOR = {
    Intent.STOP: EventType.OPTED_OUT,
    Intent.START: EventType.SUBSCRIBED,
    Intent.HELP: EventType.REPLIED,
    Intent.REPLY: EventType.REPLIED,
}


@dataclass
class InboundOutcome:
    intent: Intent
    duplicate: bool
    customers: list[str] = field(default_factory=list)
    message_id: int | None = None  # the last SMS we sent the sender, when there is one
    consent_changes: int = 0
    reply: str | None = None  # what to answer, if anything


def _insert_ignoring_duplicates(session: Session):
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(InboundMessage).on_conflict_do_nothing()


def _source(sms: InboundSMS) -> str:
    if sms.opt_out_type:
        return f"twilio:OptOutType={sms.opt_out_type.strip().upper()}"[:64]
    return f"sms:{sms.body.strip().upper()}"[:64]


def _asks_for_all(body: str) -> bool:
    """STOP ALLES / STOP ALL: no marketing by any channel (START only ever restores texts)."""
    return " ".join(body.strip(" \t\r\n\"'.!?").upper().split()) in ALL_MARKETING_WORDS


def _reply(sms: InboundSMS, settings: Settings) -> str | None:
    """Twilio's Advanced Opt-Out answers the keywords itself (OptOutType set): then we stay quiet."""
    if sms.opt_out_type:
        return None
    return {
        Intent.HELP: settings.sms_help_text,
        Intent.STOP: settings.sms_stop_all_text if _asks_for_all(sms.body) else settings.sms_stop_text,
        Intent.START: settings.sms_start_text,
    }.get(sms.intent)


def handle_sms(session: Session, sms: InboundSMS, settings: Settings) -> InboundOutcome:
    sms = replace(
        sms,
        sid=tracking.storable(sms.sid)[:100],
        sender=tracking.storable(sms.sender)[:254],
        recipient=tracking.storable(sms.recipient)[:254],
        body=tracking.storable(sms.body),
        opt_out_type=tracking.storable(sms.opt_out_type),
        raw=tracking.storable(sms.raw),
    )
    customers = list(session.scalars(select(Customer.customer_id).where(Customer.mobile == sms.sender)))
    last_sent = None
    if customers:
        last_sent = session.scalar(
            select(Message.id)
            .where(Message.customer_id.in_(customers), Message.channel == "sms", Message.sent_at.is_not(None))
            .order_by(Message.sent_at.desc(), Message.id.desc())
            .limit(1)
        )
    outcome = InboundOutcome(
        intent=sms.intent,
        duplicate=False,
        customers=customers,
        message_id=last_sent,
        reply=_reply(sms, settings),
    )
    stored = session.execute(
        _insert_ignoring_duplicates(session).returning(InboundMessage.id),
        {
            "channel": "sms",
            "provider": "twilio",
            "provider_message_id": sms.sid,
            "sender": sms.sender,
            "recipient": sms.recipient or None,
            "customer_id": customers[0] if len(customers) == 1 else None,
            "message_id": last_sent,
            "intent": str(sms.intent),
            "body": sms.body,
            "received_at": sms.received_at,
            "raw": dict(sms.raw),
        },
    ).scalar()
    if stored is None:
        outcome.duplicate = True
        return outcome
    if not customers:
        log.warning("inbound %s from a number no customer has: %s", sms.intent, mask_phone(sms.sender))
    choice = CONSENT_CHOICE.get(sms.intent)
    scope = "all" if choice == "opt_out" and _asks_for_all(sms.body) else "sms"
    if choice:
        for customer_id in customers:
            if consent.current(session, customer_id).choices.get(scope) != choice:
                consent.record(
                    session,
                    customer_id,
                    scope,
                    choice,
                    _source(sms),
                    at=sms.received_at,
                    actor=consent.Actor("customer", "sms-reply", sms.sid),
                )
                outcome.consent_changes += 1
    if last_sent is not None:
        # the answer is also an event of the message it answers: it was delivered, and replied to
        tracking.ingest(
            session,
            [
                DeliveryEvent(
                    type=EVENT_FOR[sms.intent],
                    channel="sms",
                    provider="twilio",
                    message_id=str(last_sent),
                    provider_message_id=None,
                    timestamp=sms.received_at,
                    description=f"inbound {sms.intent}",
                    event_id=f"inbound:{sms.sid}",
                    raw={"inbound_sid": sms.sid, "intent": str(sms.intent)},
                )
            ],
        )
    log.info(
        "inbound sms %s from %s: %d customer(s), %d consent change(s)",
        sms.intent,
        mask_phone(sms.sender),
        len(customers),
        outcome.consent_changes,
    )
    return outcome
