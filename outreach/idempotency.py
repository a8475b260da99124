"""Idempotency-Key for the API's writes: the first request with a key does its work and stores its
answer under the key in the same transaction; a retry with that key gets the stored answer and
changes nothing.

The key is inserted after the work (ON CONFLICT DO NOTHING): on PostgreSQL a concurrent retry waits
on the unique index until the first request commits, finds the key taken, rolls its own work back
and answers what the first one stored. So the work counts once, at one statement per request.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from outreach.errors import InputError
from outreach.models import IdempotencyKey


class KeyReused(InputError):
    """The key was used before for a different request."""


def request_digest(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(b"\n".join([method.encode(), path.encode(), body])).hexdigest()


def _stored(session: Session, client_id: int, key: str, digest: str) -> tuple[int, dict] | None:
    seen = session.scalars(
        select(IdempotencyKey).where(IdempotencyKey.client_id == client_id, IdempotencyKey.key == key)
    ).one_or_none()
    if seen is None:
        return None
    if seen.request_sha256 != digest:
        raise KeyReused(f"Idempotency-Key {key!r} was used for a different request")
    return seen.status_code, seen.response


def run_once(
    session: Session,
    client_id: int,
    key: str,
    digest: str,
    work: Callable[[], tuple[int, dict]],
) -> tuple[int, dict, bool]:
    """(status, body, replayed): ``work``'s answer, or the stored one when ``key`` was seen. The
    caller commits; on a replay this function has rolled the session back."""
    status, body = work()
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = (
        insert(IdempotencyKey)
        .values(
            client_id=client_id,
            key=key,
            request_sha256=digest,
            status_code=status,
            response=body,
            created_at=datetime.now(UTC),
        )
        .on_conflict_do_nothing(index_elements=["client_id", "key"])
        .returning(IdempotencyKey.id)
    )
    if session.execute(stmt).scalar() is not None:
        return status, body, False
    session.rollback()  # a concurrent request with this key won: undo ours, answer as it did
    stored = _stored(session, client_id, key, digest)
    return (*stored, True)
