"""What the consent API reads: a customer's state per scope, and every change since a cursor.

The changes feed is ordered by (writing transaction, id). On PostgreSQL it returns only rows of
transactions older than every transaction still running in this database: those rows are final, so
a client that follows the cursor never misses a change whose transaction committed after a later
one. (Transactions of other databases on the server are left out when pg_stat_activity shows them;
when it cannot, they only delay the feed, never make it skip.) SQLite has one writer at a time, so
ids are already in commit order there (txid stays empty: 0).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import and_, or_, select, text
from sqlalchemy.orm import Session

from outreach.consent import CHANNEL_SCOPES, history
from outreach.errors import InputError
from outreach.models import ConsentEvent

# the oldest transaction still running that may write here (xid8 as bigint), or the next one to start
OLDEST_RUNNING = text(
    """(SELECT coalesce(min(x), pg_snapshot_xmax(pg_current_snapshot()))::text::bigint
    FROM pg_snapshot_xip(pg_current_snapshot()) AS x
    WHERE x::xid NOT IN (SELECT backend_xid FROM pg_stat_activity
                         WHERE backend_xid IS NOT NULL AND datname IS DISTINCT FROM current_database()))"""
)


class BadCursor(InputError):
    pass


def _stamp(value: datetime) -> str:
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def event_dict(event: ConsentEvent) -> dict:
    return {
        "id": event.id,
        "customer_id": event.customer_id,
        "scope": event.scope,
        "choice": event.choice,
        "source": event.source,
        "recorded_at": _stamp(event.recorded_at),
        "actor": {"kind": event.actor_kind, "name": event.actor, "request_id": event.request_id}
        if event.actor_kind
        else None,
    }


def state(session: Session, customer_id: str, topics: list[str]) -> dict:
    """The latest choice per scope and whether marketing through it is allowed now (in by default;
    a global opt-out beats everything)."""
    latest: dict[str, ConsentEvent] = {}
    for event in history(session, customer_id):
        latest[event.scope] = event
    global_out = "all" in latest and latest["all"].choice == "opt_out"

    def entry(scope: str) -> dict:
        event = latest.get(scope)
        choice = event.choice if event else None
        return {
            "choice": choice,
            "since": _stamp(event.recorded_at) if event else None,
            "allowed": not global_out and choice != "opt_out",
        }

    recorded = {s.removeprefix("topic:") for s in latest if s.startswith("topic:")}
    return {
        "customer_id": customer_id,
        "global": entry("all") | {"allowed": not global_out},
        "channels": {scope: entry(scope) for scope in CHANNEL_SCOPES},
        "topics": {topic: entry(f"topic:{topic}") for topic in sorted(set(topics) | recorded)},
    }


def parse_cursor(cursor: str | None) -> tuple[int, int]:
    if not cursor:
        return (-1, 0)
    try:
        txid, _, event_id = cursor.partition("-")
        return int(txid), int(event_id)
    except ValueError as exc:
        raise BadCursor(f"cursor {cursor[:40]!r} is not one this API gave out") from exc


def changes(session: Session, cursor: str | None, limit: int) -> tuple[list[ConsentEvent], str]:
    """Up to ``limit`` changes after ``cursor`` and the cursor to ask with next time."""
    txid, event_id = parse_cursor(cursor)
    if session.get_bind().dialect.name == "postgresql":
        tx = ConsentEvent.txid
        after = or_(tx > txid, and_(tx == txid, ConsentEvent.id > event_id))
        stmt = select(ConsentEvent).where(after, tx < OLDEST_RUNNING).order_by(tx, ConsentEvent.id)
    else:
        stmt = select(ConsentEvent).where(ConsentEvent.id > event_id).order_by(ConsentEvent.id)
    events = list(session.scalars(stmt.limit(limit)))
    if events:
        txid, event_id = events[-1].txid or 0, events[-1].id
    return events, f"{max(txid, 0)}-{event_id}"
