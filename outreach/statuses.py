"""The closed vocabularies of the ledger and the decisions, as StrEnums.

A member equals its text (``MessageStatus.SENT == "sent"``), so the database, exports and the
Prefect artifacts keep the same strings; the code names them once here instead of spelling them.
"""

from __future__ import annotations

from enum import StrEnum


class MessageStatus(StrEnum):
    """Where a ledger message is; ``outreach.ledger`` draws the lifecycle and its ranks."""

    PLANNED = "planned"
    SENDING = "sending"
    UNKNOWN = "unknown"
    SENT = "sent"
    CANCELLED = "cancelled"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    BOUNCED = "bounced"


class Outcome(StrEnum):
    """A decision's outcome: exactly one per candidate (``outreach.policy.engine``)."""

    PLANNED = "planned"
    HELD = "held"
    SUPPRESSED = "suppressed"
    REJECTED = "rejected"


LIVE_OUTCOMES = (Outcome.PLANNED, Outcome.HELD)  # the outcomes that get a ledger message
