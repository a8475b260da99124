"""The obvious way to store a day's decisions and plan its ledger: the test oracle and bench baseline.

This is how ``planning.decide_day`` wrote until the bulk path (outreach.plan_write): every decision
as a Python dict through SQLAlchemy executemany, then one ORM object per decision to plan the
ledger. Slow and memory-hungry at a million candidates, but plainly right; tests compare the bulk
path with it column by column.
"""

from __future__ import annotations

from datetime import date, datetime

import polars as pl
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from outreach.ledger import idempotency_key, now
from outreach.models import Decision, Message
from outreach.sharding import shard_bucket


def write_decisions_naive(session: Session, frame: pl.DataFrame, run_date: date, decided_at: datetime) -> int:
    rows = [
        {
            **row,
            "release_at": row.get("release_at") and datetime.fromisoformat(row["release_at"]),
            "decision_date": run_date,
            "decided_at": decided_at,
        }
        for row in frame.to_dicts()
    ]
    for start in range(0, len(rows), 5000):
        session.execute(insert(Decision.__table__), rows[start : start + 5000])  # Core: one executemany
    return len(rows)


def plan_messages_naive(session: Session, run_date: date) -> int:
    """One ledger row per planned or held decision of the day; rows that exist are left alone."""
    existing = set(session.scalars(select(Message.decision_id).where(Message.run_date == run_date)))
    decisions = session.scalars(
        select(Decision).where(Decision.decision_date == run_date, Decision.outcome.in_(("planned", "held")))
    ).all()
    stamp = now()
    rows = [
        {
            "idempotency_key": idempotency_key(run_date, d.customer_id, d.offer_code, d.channel),
            "decision_id": d.id,
            "run_date": run_date,
            "customer_id": d.customer_id,
            "offer_code": d.offer_code,
            "channel": d.channel,
            "shard": shard_bucket(d.customer_id),
            "status": "planned",
            "not_before": d.release_at if d.outcome == "held" else None,
            "attempts": 0,
            "created_at": stamp,
            "updated_at": stamp,
        }
        for d in decisions
        if d.id not in existing
    ]
    if rows:
        session.execute(insert(Message), rows)
    return len(rows)
