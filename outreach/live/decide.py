"""Decide a micro-batch of payment events with the daily lane's policy engine, in one transaction.

For the events that fire a trigger: the event id is looked up first (a redelivered or replayed
event is a duplicate and changes nothing), an event older than its trigger's relevance window is
skipped, the others become candidates of the bank's current day (source ``live``, ``trigger_ref``
= the event id) and go through ``outreach.policy.decide`` with the same inputs the daily run loads
(consent, suppressions, holdings, the ledger's contacts of both lanes: caps, cooldowns, one offer
per customer per day, quiet hours). A message that quiet hours would hold past the event's
relevance window is not held but suppressed as ``offer_expired``. Event rows, candidates,
decisions and ledger rows are committed together; only then may the events be acknowledged.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import polars as pl
from sqlalchemy import Engine, func, insert, select

from outreach.config import OffersFile
from outreach.db import as_utc
from outreach.ledger import idempotency_key
from outreach.live.events import Fired, PaymentEvent, fired
from outreach.live.tables import LiveEvent
from outreach.models import Candidate, Customer, Decision, Message
from outreach.plan_write import write_decisions
from outreach.policy import decide, load_inputs
from outreach.policy.inputs import CANDIDATES
from outreach.sharding import shard_bucket
from outreach.triggers import Triggers

log = logging.getLogger(__name__)
SOURCE = "live"  # candidates.source of the live lane
EXPIRED = "offer_expired"  # reason code: quiet hours would hold the message past the event's window
TOO_OLD = "event_too_old"  # reason code: the event arrived after its trigger's window had passed


@dataclass
class BatchResult:
    triggering: int = 0  # events that fired at least one trigger
    duplicates: int = 0  # of those, already acted on (redelivered or replayed)
    skipped: Counter = field(default_factory=Counter)  # reason -> events
    outcomes: Counter = field(default_factory=Counter)  # decision reason -> candidates
    to_send: dict[str, list[int]] = field(default_factory=dict)  # channel -> ledger ids due now


@dataclass
class LiveDecider:
    engine: Engine
    offers: OffersFile
    triggers: Triggers

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.offers.policy.default_timezone)

    def bank_day(self, now: datetime) -> date:
        return now.astimezone(self.zone).date()

    def unknown_customers(self, customer_ids: set[str]) -> set[str]:
        if not customer_ids:
            return set()
        with self.engine.connect() as conn:
            known = set(
                conn.scalars(select(Customer.customer_id).where(Customer.customer_id.in_(customer_ids)))
            )
        return customer_ids - known

    def decide(self, events: list[PaymentEvent], now: datetime) -> BatchResult:
        result = BatchResult()
        firing: dict[str, tuple[PaymentEvent, list[Fired]]] = {}
        for event in events:
            found = fired(event, self.triggers)
            if found:
                result.triggering += 1
                if event.event_id in firing:
                    result.duplicates += 1  # twice in one batch
                firing[event.event_id] = (event, found)
        if not firing:
            return result
        with self.engine.connect() as conn:
            seen = set(conn.scalars(select(LiveEvent.event_id).where(LiveEvent.event_id.in_(list(firing)))))
        result.duplicates += len(seen)
        for event_id in seen:
            del firing[event_id]
        if not firing:
            return result
        run_date = self.bank_day(now)
        event_rows, candidate_rows, windows = [], [], {}
        for event_id, (event, found) in firing.items():
            window = min((f.relevance_hours for f in found if f.relevance_hours), default=None)
            expires = event.occurred_at + timedelta(hours=window) if window else None
            stale = expires is not None and expires <= now
            event_rows.append(
                {
                    "event_id": event_id,
                    "customer_id": event.customer_id,
                    "trigger": ",".join(f.trigger for f in found),
                    "occurred_at": event.occurred_at.astimezone(UTC),
                    "received_at": now,
                    "outcome": "skipped" if stale else "decided",
                    "reason": TOO_OLD if stale else None,
                }
            )
            if stale:
                result.skipped[TOO_OLD] += 1
                continue
            windows[event_id] = expires
            for trigger in found:
                for offer, score in trigger.offers:
                    candidate_rows.append(
                        {
                            "candidate_date": run_date,
                            "customer_id": event.customer_id,
                            "offer_code": offer,
                            "trigger": trigger.trigger,
                            "trigger_ref": event_id,
                            "score": score,
                            "source": SOURCE,
                        }
                    )
        inputs = None
        if candidate_rows:  # read before the write transaction: the committed state of both lanes
            customers = sorted({r["customer_id"] for r in candidate_rows})
            inputs = load_inputs(
                self.engine, run_date, self.offers, now, customer_ids=customers, use_adbc=False
            )
        with self.engine.begin() as conn:
            conn.execute(insert(LiveEvent), event_rows)  # the primary key refuses a concurrent twin
            if not candidate_rows:
                return result
            ids = conn.execute(
                insert(Candidate).returning(Candidate.id, sort_by_parameter_order=True), candidate_rows
            ).scalars()
            frame = pl.DataFrame(
                [
                    {
                        **{k: r[k] for k in ("customer_id", "offer_code", "score", "trigger", "trigger_ref")},
                        "id": i,
                    }
                    for r, i in zip(candidate_rows, ids, strict=True)
                ]
            ).select(pl.col("id").alias("candidate_id"), *[c for c in CANDIDATES if c != "candidate_id"])
            inputs.candidates = frame.cast(CANDIDATES)
            decisions = _expire(decide(inputs), frame, windows)
            write_decisions(conn, decisions, run_date, now)
            planned = _plan_batch(conn, frame["candidate_id"].to_list(), run_date, now)
            result.outcomes.update(decisions["reason"].to_list())
        for mid, channel, not_before in planned:
            if not_before is None:
                result.to_send.setdefault(channel, []).append(mid)
        return result


def _plan_batch(conn, candidate_ids: list[int], run_date: date, now: datetime) -> list[tuple]:
    """The ledger rows of this batch's planned and held decisions: (id, channel, not_before).

    The same rows ``ledger.plan_messages`` writes (idempotency key, shard, release time), for the
    batch's decisions only: planning the whole day again would cost every batch the day's size.
    """
    decided = conn.execute(
        select(
            Decision.id,
            Decision.customer_id,
            Decision.offer_code,
            Decision.channel,
            Decision.outcome,
            Decision.release_at,
        )
        .where(Decision.candidate_id.in_(candidate_ids), Decision.outcome.in_(["planned", "held"]))
        .order_by(Decision.id)
    ).all()
    if not decided:
        return []
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
            "not_before": as_utc(d.release_at) if d.outcome == "held" else None,
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        }
        for d in decided
    ]
    # a second consumer's message for the same key refuses this insert: the batch is decided again
    ids = conn.execute(insert(Message).returning(Message.id, sort_by_parameter_order=True), rows).scalars()
    return [(mid, r["channel"], r["not_before"]) for mid, r in zip(ids, rows, strict=True)]


def _expire(decisions: pl.DataFrame, candidates: pl.DataFrame, windows: dict) -> pl.DataFrame:
    """Held past the event's relevance window: suppressed as ``offer_expired``, never sent later."""
    held = decisions.filter(pl.col("outcome") == "held")
    if held.is_empty():
        return decisions
    refs = dict(zip(candidates["candidate_id"], candidates["trigger_ref"], strict=True))
    expired = []
    for cid, release_at in held.select("candidate_id", "release_at").rows():
        expires = windows.get(refs[cid])
        release = datetime.fromisoformat(release_at) if release_at else None
        if expires is not None and release is not None and release > expires:
            expired.append(cid)
    if not expired:
        return decisions
    gone = pl.col("candidate_id").is_in(expired)
    return decisions.with_columns(
        outcome=pl.when(gone).then(pl.lit("suppressed")).otherwise("outcome"),
        reason=pl.when(gone).then(pl.lit(EXPIRED)).otherwise("reason"),
        channel=pl.when(gone).then(pl.lit(None, dtype=pl.Utf8)).otherwise("channel"),
    )


def live_backlog(
    engine: Engine, now: datetime, windows: dict[str, float]
) -> tuple[list[int], dict[str, list[int]]]:
    """Live messages still planned: those past their event's relevance window (to expire) and those
    due now, per channel (to send) — what a consumer that died between commit and hand-off left
    behind, and held messages whose sending window opened."""
    stmt = (
        select(Message.id, Message.channel, Candidate.trigger, LiveEvent.occurred_at, Message.not_before)
        .join(Decision, Decision.id == Message.decision_id)
        .join(Candidate, Candidate.id == Decision.candidate_id)
        .join(LiveEvent, LiveEvent.event_id == Candidate.trigger_ref)
        .where(Candidate.source == SOURCE, Message.status == "planned")
        .order_by(Message.id)
    )
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    expired: list[int] = []
    due: dict[str, list[int]] = {}
    for mid, channel, trigger, occurred, not_before in rows:
        hours = windows.get(trigger)
        if hours and as_utc(occurred) + timedelta(hours=hours) <= now:
            expired.append(mid)
        elif not_before is None or as_utc(not_before) <= now:
            due.setdefault(channel, []).append(mid)
    return expired, due


def count_live(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(select(LiveEvent.outcome, func.count()).group_by(LiveEvent.outcome)).all())
