"""What the agent reads: the trigger in plain words and the call script of the offer."""

from __future__ import annotations

from datetime import date

from babel.dates import format_date
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from outreach import rendering
from outreach.config import Offer
from outreach.models import Customer, Transaction

# trigger code fragments -> how to say it; payment-signal names may vary, so match on words
_PHRASES = (
    (("child", "kinderbijslag"), "receives child benefit"),
    (("balance",), "has a large balance on the current account"),
    (("airport", "atm"), "withdrew cash at an airport"),
    (("airline", "flight", "ticket"), "bought an airline ticket"),
)


def _month(day: date) -> str:
    return format_date(day, "MMMM yyyy", locale="en")


def describe_trigger(session: Session, customer_id: str, trigger: str | None, trigger_ref: str | None) -> str:
    """E.g. "receives child benefit since June 2026" — no amounts, no account numbers."""
    if not trigger:
        return "selected for this offer"
    key = trigger.lower()
    phrase = next((text for words, text in _PHRASES if any(w in key for w in words)), None)
    if phrase is None:
        return trigger.replace("_", " ").replace(":", ": ")
    tx = session.get(Transaction, trigger_ref) if trigger_ref else None
    if tx is None or tx.customer_id != customer_id:
        return phrase
    if phrase.startswith("receives"):
        # a recurring credit: since the first one from the same payer
        first = session.scalar(
            select(func.min(Transaction.booked_at)).where(
                Transaction.customer_id == customer_id,
                Transaction.counterparty_name == tx.counterparty_name,
                Transaction.amount > 0,
            )
        )
        return f"{phrase} since {_month((first or tx.booked_at).date())}"
    if phrase.startswith("withdrew") and tx.city:
        return f"{phrase} ({tx.city}) in {_month(tx.booked_at.date())}"
    if phrase.startswith("has"):
        return phrase
    return f"{phrase} in {_month(tx.booked_at.date())}"


def script_context(customer: Customer, offer: Offer | None, offer_code: str, agent_name: str) -> dict:
    """The template context: the shared message context (customer, offer, bank) and the agent."""
    if offer is not None:
        columns = {c.name: getattr(customer, c.name) for c in Customer.__table__.columns}
        context = rendering.message_context(columns, offer, {}, date.today(), None)
        context["agent_name"] = agent_name
        return context
    return {  # an offer no longer in offers.yaml: the script may still exist under its code
        "customer": {"first_name": customer.first_name, "last_name": customer.last_name},
        "offer": {"code": offer_code, "product": "", "topic": ""},
        "bank": dict(rendering.BANK),
        "agent_name": agent_name,
    }


def render_script(
    renderer: rendering.Renderer,
    customer: Customer,
    offer: Offer | None,
    offer_code: str,
    agent_name: str,
) -> rendering.Rendered:
    name = offer.template_for("call") if offer else offer_code.lower()
    context = script_context(customer, offer, offer_code, agent_name)
    return renderer.render("call", name, customer.language or "nl", context)
