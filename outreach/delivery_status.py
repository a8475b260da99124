"""A day's delivery lifecycle per channel and offer: sent, delivered, failed (top reasons), bounced,
opted out after contact, and the events no message claims. For ``outreach status`` and artifacts."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Engine, and_, case, distinct, exists, func, or_, select

from outreach.db import session_scope
from outreach.models import ConsentEvent, DeliveryEventRecord, Message
from outreach.statuses import MessageStatus

SENT_OR_LATER = (
    MessageStatus.SENT,
    MessageStatus.DELIVERED,
    MessageStatus.UNDELIVERED,
    MessageStatus.BOUNCED,
)
FAILED = (MessageStatus.FAILED, MessageStatus.UNDELIVERED)
TOP_REASONS = 3


@dataclass(frozen=True)
class StatusRow:
    channel: str
    offer_code: str
    messages: int
    sent: int
    delivered: int
    failed: int
    bounced: int
    awaiting: int  # sent, no final status yet
    unknown: int  # outcome unknown: being reconciled
    opted_out_after_contact: int  # customers who opted out (channel or all) after this contact
    top_failure_reasons: str = ""


@dataclass
class StatusReport:
    run_date: date
    rows: list[StatusRow] = field(default_factory=list)
    unmatched_events: int = 0  # events received that day that match no ledger message

    def records(self) -> list[dict[str, object]]:
        """Flat rows for a Prefect table artifact or a CSV (no personal data in them)."""
        return [asdict(row) for row in self.rows]

    def totals(self) -> dict[str, int]:
        keys = ("messages", "sent", "delivered", "failed", "bounced", "awaiting", "unknown")
        return {
            key: sum(getattr(row, key) for row in self.rows) for key in keys + ("opted_out_after_contact",)
        }


def _scope_of(channel_column):
    return case((channel_column == "call", "phone"), else_=channel_column)


def lifecycle(engine: Engine, run_date: date) -> StatusReport:
    report = StatusReport(run_date)
    opted_out_after = exists().where(
        ConsentEvent.customer_id == Message.customer_id,
        ConsentEvent.choice == "opt_out",
        or_(ConsentEvent.scope == "all", ConsentEvent.scope == _scope_of(Message.channel)),
        Message.sent_at.is_not(None),
        ConsentEvent.recorded_at >= Message.sent_at,
    )
    was_sent = or_(Message.sent_at.is_not(None), Message.status.in_(SENT_OR_LATER))

    def count_when(condition):
        return func.sum(case((condition, 1), else_=0))

    stmt = (
        select(
            Message.channel,
            Message.offer_code,
            func.count(),
            count_when(was_sent),
            count_when(Message.status == MessageStatus.DELIVERED),
            count_when(Message.status.in_(FAILED)),
            count_when(Message.status == MessageStatus.BOUNCED),
            count_when(Message.status == MessageStatus.SENT),
            count_when(Message.status == MessageStatus.UNKNOWN),
            func.count(distinct(case((opted_out_after, Message.customer_id)))),
        )
        .where(Message.run_date == run_date)
        .group_by(Message.channel, Message.offer_code)
        .order_by(Message.channel, Message.offer_code)
    )
    reasons_stmt = (
        select(Message.channel, Message.offer_code, Message.last_error_code, func.count())
        .where(Message.run_date == run_date, Message.status.in_(FAILED + (MessageStatus.BOUNCED,)))
        .group_by(Message.channel, Message.offer_code, Message.last_error_code)
    )
    start = datetime.combine(run_date, time(), UTC)
    with session_scope(engine) as session:
        reasons: dict[tuple[str, str], list[tuple[int, str]]] = {}
        for channel, offer, code, n in session.execute(reasons_stmt):
            reasons.setdefault((channel, offer), []).append((n, code or "unspecified"))
        for channel, offer, *counts in session.execute(stmt):
            top = sorted(reasons.get((channel, offer), []), key=lambda item: (-item[0], item[1]))[
                :TOP_REASONS
            ]
            report.rows.append(
                StatusRow(
                    channel, offer, *(int(c or 0) for c in counts), ", ".join(f"{c} ×{n}" for n, c in top)
                )
            )
        report.unmatched_events = (
            session.scalar(
                select(func.count())
                .select_from(DeliveryEventRecord)
                .where(
                    and_(
                        DeliveryEventRecord.message_id.is_(None),
                        DeliveryEventRecord.received_at >= start,
                        DeliveryEventRecord.received_at < start + timedelta(days=1),
                    )
                )
            )
            or 0
        )
    return report
