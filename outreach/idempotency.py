"""Idempotency-Key for the API's writes: the first request with a key does its work and stores the
answer in the same transaction; a retry with that key gets the stored answer and changes nothing.

The key row is inserted first (ON CONFLICT DO NOTHING): on PostgreSQL a concurrent retry waits on
the unique index until the first request commits, then reads its answer, so the work runs once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from outreach.models import IdempotencyKey


class KeyReused(ValueError):
    """The key was used before for a different request."""


def request_digest(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(b"\n".join([method.encode(), path.encode(), body])).hexdigest()


def run_once(
    session: Session,
    client_id: int,
    key: str,
    digest: str,
    work: Callable[[], tuple[int, dict]],
) -> tuple[int, dict, bool]:
    """(status, body, replayed): ``work``'s answer, or the stored one when ``key`` was seen."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = (
        insert(IdempotencyKey)
        .values(client_id=client_id, key=key, request_sha256=digest, created_at=datetime.now(UTC))
        .on_conflict_do_nothing(index_elements=["client_id", "key"])
        .returning(IdempotencyKey.id)
    )
    new_id = session.execute(stmt).scalar()
    if new_id is None:
        seen = session.scalars(
            select(IdempotencyKey).where(IdempotencyKey.client_id == client_id, IdempotencyKey.key == key)
        ).one()
        if seen.request_sha256 != digest:
            raise KeyReused(f"Idempotency-Key {key!r} was used for a different request")
        return seen.status_code, seen.response, True
    status, body = work()
    row = session.get(IdempotencyKey, new_id)
    row.status_code, row.response = status, body
    return status, body, False
