"""Cut a day's due messages into batches: the unit of work for a Prefect task or a worker."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Engine

from outreach import ledger
from outreach.db import session_scope


def due_batches(
    engine: Engine,
    run_date: date,
    channel: str,
    at: datetime,
    size: int,
    carry_days: int = 0,
    shard: int = 0,
    shards: int = 1,
) -> list[list[int]]:
    with session_scope(engine) as session:
        ids = ledger.due_ids(session, run_date, channel, at, carry_days, shard, shards)
    return [ids[start : start + size] for start in range(0, len(ids), size)]
