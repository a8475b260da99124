"""The campaigns' state in the database: definitions as last synced, pause switch, assignments, events.

Registered through ``outreach.schema``, so that Alembic sees these tables.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Select,
    String,
    Text,
    UniqueConstraint,
    select,
)
from sqlalchemy.orm import Mapped, mapped_column

from outreach.models import Base, BigId, Decision, Message


class CampaignRecord(Base):
    """One row per campaign ever synced from campaigns/: its definition then, and whether it is paused."""

    __tablename__ = "campaigns"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(100))
    file: Mapped[str] = mapped_column(String(255))
    definition: Mapped[dict] = mapped_column(JSON)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    paused_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    synced_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CampaignAssignment(Base):
    """A customer who entered a campaign (once per campaign): control or treatment, and which variant."""

    __tablename__ = "campaign_assignments"
    __table_args__ = (
        UniqueConstraint("campaign", "customer_id"),
        Index("ix_campaign_assignments_campaign_day", "campaign", "assigned_on"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign: Mapped[str] = mapped_column(String(64))
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidates.id"), unique=True)
    customer_id: Mapped[str] = mapped_column(String(32))
    offer_code: Mapped[str] = mapped_column(String(40))
    assigned_on: Mapped[date] = mapped_column(Date)
    arm: Mapped[str] = mapped_column(String(10))  # treatment | control
    variant: Mapped[str | None] = mapped_column(String(32))  # treatment only
    channel: Mapped[str | None] = mapped_column(String(8))  # control: the channel it would have had
    template: Mapped[str | None] = mapped_column(String(64))  # the variant's template, else the offer's


class CampaignEvent(Base):
    """What happened to a campaign: paused, resumed, messages held back by a pause (with a count)."""

    __tablename__ = "campaign_events"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # paused | resumed | held_back
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    count: Mapped[int] = mapped_column(Integer, default=0)
    detail: Mapped[str | None] = mapped_column(Text)


def assignments_with_messages(campaign: str) -> Select:
    """Each customer who entered ``campaign`` with the ledger message their candidate became (none
    when the engine or the control arm kept it back); in assignment order."""
    return (
        select(
            CampaignAssignment.candidate_id,
            CampaignAssignment.customer_id,
            CampaignAssignment.offer_code,
            CampaignAssignment.assigned_on,
            CampaignAssignment.arm,
            CampaignAssignment.variant,
            CampaignAssignment.channel,
            Message.id.label("message_id"),
            Message.status,
        )
        .outerjoin(Decision, Decision.candidate_id == CampaignAssignment.candidate_id)
        .outerjoin(Message, Message.decision_id == Decision.id)
        .where(CampaignAssignment.campaign == campaign)
        .order_by(CampaignAssignment.id)
    )
