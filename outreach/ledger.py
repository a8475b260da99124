"""The message ledger: idempotent planning, atomic claims, forward-only status changes.

Status lifecycle (never backwards):

    planned ──► sending ──► sent ──► delivered | undelivered | bounced | failed
       │           ├──────► failed            (provider refused: permanent)
       │           ├──────► planned           (transient failure, retry budget left)
       │           └──────► unknown ──► sent | failed   (request may have left: reconcile, never resend)
       │                        └─────► planned         (reconciled: the provider has no such message)
       └──► cancelled                          (consent withdrawn before sending)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Connection, Engine, and_, bindparam, insert, or_, select, update
from sqlalchemy.orm import Session

from outreach.models import Message, MessageTransition
from outreach.plan_write import plan_ledger
from outreach.sharding import in_shard
from outreach.statuses import MessageStatus

# rank of each status: a message may only move to a higher rank (or within "terminal" by events)
RANK = {
    MessageStatus.PLANNED: 0,
    MessageStatus.SENDING: 1,
    MessageStatus.UNKNOWN: 2,
    MessageStatus.SENT: 3,
    MessageStatus.CANCELLED: 4,
    MessageStatus.DELIVERED: 5,
    MessageStatus.UNDELIVERED: 5,
    MessageStatus.FAILED: 5,
    MessageStatus.BOUNCED: 5,
}
TERMINAL = {
    MessageStatus.CANCELLED,
    MessageStatus.DELIVERED,
    MessageStatus.UNDELIVERED,
    MessageStatus.FAILED,
    MessageStatus.BOUNCED,
}
# the backward steps: a transient failure gives the slot back; reconciliation found that the
# provider verifiably never got an in-doubt message (outreach.sending)
RETRYABLE = {(MessageStatus.SENDING, MessageStatus.PLANNED), (MessageStatus.UNKNOWN, MessageStatus.PLANNED)}


def idempotency_key(run_date: date, customer_id: str, offer_code: str, channel: str) -> str:
    return f"{run_date.isoformat()}:{customer_id}:{offer_code}:{channel}"


def can_move(current: str, new: str) -> bool:
    if (current, new) in RETRYABLE:
        return True
    return RANK[new] > RANK[current] and current not in TERMINAL


def now() -> datetime:
    return datetime.now(UTC)


def plan_messages(session: Session | Connection, run_date: date) -> int:
    """One ledger row per planned or held decision of the day; rows that exist are left alone.

    Set-based (outreach.plan_write): one INSERT ... SELECT in the caller's transaction, so it also
    repairs a day whose decisions were stored without their ledger rows.
    """
    conn = session.connection() if isinstance(session, Session) else session
    return plan_ledger(conn, run_date, now())


def due_ids(
    session: Session,
    run_date: date,
    channel: str,
    at: datetime,
    carry_days: int = 0,
    shard: int = 0,
    shards: int = 1,
) -> list[int]:
    """Ids of planned messages of a channel that may be sent at ``at`` (held ones only once released).

    ``carry_days`` also takes messages planned on the days before ``run_date`` that are still
    waiting, e.g. a call held over a weekend or an SMS held past the end of yesterday's window.
    With ``shards`` > 1, only those of shard ``shard`` (outreach.sharding): the day split by customer.
    """
    stmt = (
        select(Message.id)
        .where(
            Message.run_date <= run_date,
            Message.run_date >= run_date - timedelta(days=carry_days),
            Message.channel == channel,
            Message.status == MessageStatus.PLANNED,
            or_(Message.not_before.is_(None), Message.not_before <= at),
        )
        .order_by(Message.id)
    )
    if shards > 1:
        stmt = stmt.where(in_shard(Message.shard, shard, shards))
    return list(session.scalars(stmt))


def claim(engine: Engine, ids: Sequence[int], worker: str) -> list[int]:
    """Atomically move ``planned`` rows among ``ids`` to ``sending``; returns the ids this worker won.

    One UPDATE ... RETURNING is atomic on both databases; on PostgreSQL the row locks are taken
    with SKIP LOCKED so a second worker skips rows the first is claiming instead of waiting.
    """
    if not ids:
        return []
    stamp = now()
    with engine.begin() as conn:
        target = select(Message.id).where(Message.id.in_(list(ids)), Message.status == MessageStatus.PLANNED)
        if conn.dialect.name == "postgresql":
            target = target.with_for_update(skip_locked=True)
        won = list(
            conn.execute(
                update(Message)
                .where(Message.id.in_(target.scalar_subquery()), Message.status == MessageStatus.PLANNED)
                .values(
                    status=MessageStatus.SENDING,
                    claimed_by=worker,
                    claimed_at=stamp,
                    attempts=Message.attempts + 1,
                    updated_at=stamp,
                )
                .returning(Message.id)
            ).scalars()
        )
        if won:
            conn.execute(
                insert(MessageTransition),
                [
                    {
                        "message_id": mid,
                        "from_status": MessageStatus.PLANNED,
                        "to_status": MessageStatus.SENDING,
                        "at": stamp,
                        "detail": f"claimed by {worker}",
                    }
                    for mid in won
                ],
            )
    return sorted(won)


def transition(
    session: Session,
    message_ids: Iterable[int],
    new_status: str,
    *,
    expected: str | Sequence[str] | None = None,
    detail: str | None = None,
    **values: object,
) -> int:
    """Move messages to ``new_status`` where the move is forward; returns how many moved."""
    allowed_from = [s for s in RANK if can_move(s, new_status)]
    if expected is not None:
        wanted = [expected] if isinstance(expected, str) else list(expected)
        allowed_from = [s for s in allowed_from if s in wanted]
    ids = list(message_ids)
    if not ids or not allowed_from:
        return 0
    stamp = now()
    moved = 0
    for chunk_start in range(0, len(ids), 900):
        chunk = ids[chunk_start : chunk_start + 900]
        rows = session.execute(
            select(Message.id, Message.status).where(
                and_(Message.id.in_(chunk), Message.status.in_(allowed_from))
            )
        ).all()
        if not rows:
            continue
        by_status: dict[str, list[int]] = {}
        for mid, status in rows:
            by_status.setdefault(status, []).append(mid)
        extra = dict(values)
        if new_status == MessageStatus.SENT:
            extra.setdefault("sent_at", stamp)
        for old, mids in by_status.items():
            result = session.execute(
                update(Message)
                .where(Message.id.in_(mids), Message.status == old)
                .values(status=new_status, updated_at=stamp, **extra)
            )
            moved += result.rowcount
            session.execute(
                insert(MessageTransition),
                [
                    {
                        "message_id": m,
                        "from_status": old,
                        "to_status": new_status,
                        "at": stamp,
                        "detail": detail,
                    }
                    for m in mids
                ],
            )
    return moved


def record_sent(session: Session, provider: str, results: dict[int, str | None]) -> int:
    """sending → sent, storing each message's provider id."""
    if not results:
        return 0
    stamp = now()
    stmt = (
        update(Message.__table__)
        .where(
            Message.__table__.c.id == bindparam("mid"), Message.__table__.c.status == MessageStatus.SENDING
        )
        .values(
            status=MessageStatus.SENT,
            provider=provider,
            provider_id=bindparam("pid"),
            sent_at=stamp,
            updated_at=stamp,
        )
    )
    session.execute(stmt, [{"mid": mid, "pid": pid} for mid, pid in results.items()])
    session.execute(
        insert(MessageTransition),
        [
            {
                "message_id": mid,
                "from_status": MessageStatus.SENDING,
                "to_status": MessageStatus.SENT,
                "at": stamp,
                "detail": provider,
            }
            for mid in results
        ],
    )
    return len(results)
