"""Is a day's dispatch finished? What is left, by status, so a run can end failed and say why.

Left: ``sending`` (claimed, perhaps by a dead worker: reconciled once the lease has passed),
``unknown`` (in doubt: reconciled with the provider), and ``planned`` messages that are due —
not those held for quiet hours (their release is later) nor those of a paused campaign (they
wait for ``outreach campaigns resume`` on purpose). The window is the day and the
``carry_days`` before it, as ``ledger.due_ids``.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.orm import Session

from outreach.campaigns.tables import CampaignAssignment, CampaignRecord
from outreach.models import Decision, Message
from outreach.statuses import MessageStatus


def unfinished(session: Session, run_date: date, at: datetime, carry_days: int = 0) -> dict[str, int]:
    paused = exists(
        select(1)
        .select_from(Decision)
        .join(CampaignAssignment, CampaignAssignment.candidate_id == Decision.candidate_id)
        .join(CampaignRecord, CampaignRecord.name == CampaignAssignment.campaign)
        .where(Decision.id == Message.decision_id, CampaignRecord.paused.is_(True))
    )
    due = and_(
        Message.status == MessageStatus.PLANNED,
        or_(Message.not_before.is_(None), Message.not_before <= at),
        ~paused,
    )
    stmt = (
        select(Message.status, func.count())
        .where(
            Message.run_date <= run_date,
            Message.run_date >= run_date - timedelta(days=carry_days),
            or_(Message.status.in_((MessageStatus.SENDING, MessageStatus.UNKNOWN)), due),
        )
        .group_by(Message.status)
    )
    return {status: count for status, count in session.execute(stmt).all()}
