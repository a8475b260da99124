"""The confirmation of an e-mailed objection, sent through the configured e-mail channel."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import Engine

from channels.base import OutboundMessage
from outreach.channel_setup import open_channel
from outreach.config import Settings
from outreach.db import session_scope
from outreach.models import Customer, ObjectionMail

log = logging.getLogger("outreach.objections")

TEXT = {
    "nl": (
        "Bevestiging: u ontvangt geen aanbiedingen meer",
        "Beste klant,\n\nWe hebben uw bezwaar ontvangen. U ontvangt van ons geen persoonlijke "
        "aanbiedingen meer, via geen enkel kanaal (e-mail, sms, post en telefoon).\n\n"
        "Berichten over uw rekeningen en diensten blijft u ontvangen.\n",
    ),
    "en": (
        "Confirmation: you will receive no more offers",
        "Dear customer,\n\nWe have received your objection. You will receive no more personal "
        "offers from us through any channel (e-mail, text, post and phone).\n\n"
        "You will still receive messages about your accounts and services.\n",
    ),
}


def send_confirmation(engine: Engine, settings: Settings, objection_id: int) -> str:
    """Reply to the customer's address on file (not to the mail's From): 'sent' or 'failed'."""
    with session_scope(engine) as session:
        row = session.get(ObjectionMail, objection_id)
        customer = session.get(Customer, row.customer_id)
        language = customer.language if customer.language in TEXT else "nl"
        subject, body = TEXT[language]
        message = OutboundMessage(
            message_id=f"objection-{objection_id}",
            channel="email",
            customer_id=customer.customer_id,
            offer_code="OBJECTION_CONFIRMATION",
            run_date=datetime.now(UTC).date(),
            to=customer.email or "",
            body=body,
            subject=subject,
            language=language,
        )
    channel = open_channel(settings, "email")
    try:
        outcome = channel.send_batch([message])
    finally:
        channel.close()
    result = "sent" if message.message_id in outcome.results else "failed"
    if result == "failed":
        log.warning(
            "objection %s: confirmation not sent (%s)",
            objection_id,
            type(outcome.errors.get(message.message_id)).__name__,
        )
    with session_scope(engine) as session:
        session.get(ObjectionMail, objection_id).reply = result
    return result
