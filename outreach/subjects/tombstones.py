"""An erased customer imported again stays suppressed: the import finds their tombstone by keyed hash."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import Connection, insert, select
from sqlalchemy.orm import Session

from outreach import audit
from outreach.db import as_utc
from outreach.models import ConsentEvent, ErasureTombstone
from outreach.pseudonym import subject_hash

SOURCE = "erasure-tombstone"


def reapply(conn: Connection, customer_ids: Iterable[str], now: datetime | None = None) -> int:
    """Give each just-imported customer who was erased before a global opt-out (once); returns how many.

    The opt-out is dated when the customer objected (or was erased), not when they came back: the
    objection has been in force all along.
    """
    by_hash = {subject_hash(c): c for c in customer_ids}
    if not by_hash:
        return 0
    found = conn.execute(
        select(ErasureTombstone.subject_hash, ErasureTombstone.objected_at, ErasureTombstone.erased_at).where(
            ErasureTombstone.subject_hash.in_(list(by_hash))
        )
    ).all()
    since = {by_hash[h]: objected or erased for h, objected, erased in found}
    ids = list(since)
    if ids:  # an earlier import may have done it already
        done = set(
            conn.scalars(
                select(ConsentEvent.customer_id).where(
                    ConsentEvent.customer_id.in_(ids), ConsentEvent.source == SOURCE
                )
            )
        )
        ids = [c for c in ids if c not in done]
    if not ids:
        return 0
    now = now or datetime.now(UTC)
    conn.execute(
        insert(ConsentEvent),
        [
            {"customer_id": c, "scope": "all", "choice": "opt_out", "source": SOURCE, "recorded_at": since[c]}
            for c in ids
        ],
    )
    session = Session(bind=conn)
    for customer_id in ids:
        audit.append(
            session,
            "consent.changed",
            {
                "scope": "all",
                "choice": "opt_out",
                "source": SOURCE,
                "since": as_utc(since[customer_id]).isoformat(),
            },
            actor="import",
            customer_id=customer_id,
            at=now,
        )
    session.flush()
    return len(ids)
