"""A payment event as the bank publishes it, how it is read, and which trigger it fires.

The event is one booked card/ATM authorisation or credit, as JSON:

    {"event_id": "T123", "customer_id": "C0000042", "occurred_at": "2026-12-04T08:15:00+00:00",
     "amount": "-250.00", "mcc": "6011", "description": "...", "city": "Schiphol",
     "counterparty_name": "...", "balance_after": "1234.56"}

``event_id`` is the bank's transaction id: it is what makes a redelivery or a replay harmless.
``balance_after`` is optional (the balance triggers need it). An event that cannot be read is
*poison*: it goes to the dead-letter subject with one of the reasons of ``POISON``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from outreach.errors import InputError
from outreach.triggers import Triggers

# why an event went to the dead-letter subject
POISON = {
    "bad_json": "the event is not a JSON object",
    "bad_schema": "a required field is missing or has the wrong type",
    "amount_not_a_number": "amount (or balance_after) is not a decimal number",
    "unknown_customer": "the event names a customer that is not in the customer table",
}


class PoisonEvent(InputError):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class PaymentEvent(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    event_id: str = Field(min_length=1, max_length=64)
    customer_id: str = Field(min_length=1, max_length=32)
    occurred_at: datetime
    amount: Decimal = Field(allow_inf_nan=False)
    mcc: str | None = None
    description: str | None = None
    city: str | None = None
    counterparty_name: str | None = None
    balance_after: Decimal | None = Field(None, allow_inf_nan=False)

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("occurred_at needs a UTC offset")
        return value

    def as_json(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()


def parse_event(data: bytes) -> PaymentEvent:
    """The event in ``data``, or PoisonEvent naming why not (never a personal value in the detail)."""
    try:  # the common case in one pass of pydantic's JSON parser; the slow path names the problem
        return PaymentEvent.model_validate_json(data)
    except ValidationError:
        pass
    try:
        raw = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PoisonEvent("bad_json", type(exc).__name__) from exc
    if not isinstance(raw, dict):
        raise PoisonEvent("bad_json", "not an object")
    for name in ("amount", "balance_after"):
        value = raw.get(name)
        if value is None and name == "balance_after":
            continue
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise PoisonEvent("amount_not_a_number" if value is not None else "bad_schema", name)
        try:
            if not Decimal(str(value)).is_finite():
                raise InvalidOperation
        except InvalidOperation as exc:
            raise PoisonEvent("amount_not_a_number", name) from exc
    try:
        return PaymentEvent.model_validate(raw)
    except ValidationError as exc:
        fields = sorted({str(err["loc"][0]) for err in exc.errors() if err["loc"]})
        raise PoisonEvent("bad_schema", ",".join(fields) or "(event)") from exc


@dataclass(frozen=True)
class Fired:
    """A trigger the event fired: the trigger's name, its offers with their scores."""

    trigger: str
    offers: list[tuple[str, float]]
    relevance_hours: float | None


def fired(event: PaymentEvent, triggers: Triggers) -> list[Fired]:
    """The triggers this one event fires: the per-event reading of the daily signals' SQL."""
    found: list[Fired] = []

    def add(name: str, score: float) -> None:
        rule = triggers.by_name()[name]
        found.append(Fired(name, triggers.candidates(name, score), rule.relevance_hours))

    text = " ".join(filter(None, (event.description, event.city, event.counterparty_name))).lower()
    atm, airline = triggers.airport_atm, triggers.airline_ticket
    if event.amount < 0:
        if event.mcc in atm.mcc and any(word in text for word in atm.place_words):
            add("airport_atm", atm.score.of(event.amount))
        elif airline.matches_mcc(event.mcc):
            add("airline_ticket", airline.score.of(event.amount))
    if event.amount > 0:
        benefit = triggers.child_benefit
        counterparty = (event.counterparty_name or "").lower()
        description = (event.description or "").lower()
        from_agency = any(n in counterparty for n in benefit.counterparty_contains) or (
            counterparty in benefit.counterparty_equals
        )
        if from_agency and any(w in description for w in benefit.description_contains):
            add("child_benefit", benefit.score(event.amount))
        if event.balance_after is not None:
            before = event.balance_after - event.amount
            for name in ("large_balance", "very_large_balance"):
                rule = triggers.by_name()[name]
                if before <= rule.above < event.balance_after:
                    add(name, rule.score(event.balance_after))
    return found
