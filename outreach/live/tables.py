"""The live lane's own table: every triggering payment event it acted on, once per event id.

The event id is the key that makes consumption idempotent: a redelivered or replayed event finds
its row and changes nothing. The row is written in the same transaction as the candidates,
decisions and ledger rows it caused, so the acknowledgement to the broker (after the commit) can
never be ahead of the database. ``explain`` reads it to say which event triggered a live message.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from outreach.models import Base


class LiveEvent(Base):
    __tablename__ = "live_events"
    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(32), index=True)
    trigger: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # when the customer paid
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)  # when we decided
    outcome: Mapped[str] = mapped_column(String(16))  # decided | skipped
    reason: Mapped[str | None] = mapped_column(String(40))  # why skipped (event_too_old)
