"""Make the day's plan: decide every undecided candidate, record each decision, plan the ledger."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import polars as pl
from sqlalchemy import Engine, delete, insert, select

from outreach import audit
from outreach.campaigns import seam as campaign_rules
from outreach.config import OffersFile
from outreach.db import session_scope
from outreach.ledger import plan_messages
from outreach.models import Decision, OfferRecord
from outreach.plan_write import write_decisions
from outreach.policy import decide, load_inputs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlanReport:
    decided: int  # candidates decided in this call (0 when the day was already decided)
    messages_planned: int
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase (bench/bench_plan_write.py)


def snapshot_offers(engine: Engine, offers: OffersFile) -> None:
    """Keep the offers table equal to the file, so decisions can be explained later."""
    with session_scope(engine) as session:
        session.execute(delete(OfferRecord))
        session.execute(
            insert(OfferRecord),
            [
                {
                    "code": o.code,
                    "product": o.product,
                    "topic": o.topic,
                    "priority": o.priority,
                    "definition": o.model_dump(mode="json"),
                }
                for o in offers.offers
            ],
        )
        audit.record_config(session, "offers", "offers", offers.model_dump(mode="json"), actor="flow:daily")


def decide_day(engine: Engine, run_date: date, offers: OffersFile, now: datetime | None = None) -> PlanReport:
    """Decide the candidates of ``run_date`` that have no decision yet; idempotent per candidate.

    The decisions and their ledger rows are written in one transaction (outreach.plan_write), so a
    crash leaves both or neither; ledger rows missing for earlier decisions of the day are added.
    """
    now = now or datetime.now(UTC)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(phase: str) -> None:
        nonlocal clock
        timings[phase] = round(time.perf_counter() - clock, 3)
        clock = time.perf_counter()

    snapshot_offers(engine, offers)
    inputs = load_inputs(engine, run_date, offers, now)
    with engine.connect() as conn:
        decided = pl.Series(
            "candidate_id",
            conn.scalars(select(Decision.candidate_id).where(Decision.decision_date == run_date)).all(),
            dtype=pl.Int64,
        )
    if len(decided):
        inputs.candidates = inputs.candidates.filter(~pl.col("candidate_id").is_in(decided.implode()))
    lap("load")
    frame = decide(inputs)
    lap("decide")
    frame = campaign_rules.apply(engine, frame, inputs)  # campaigns only narrow the engine's outcome
    lap("campaigns")
    with engine.begin() as conn:
        written = write_decisions(conn, frame, run_date, now)
        lap("write_decisions")
        planned = plan_messages(conn, run_date)
    lap("plan_ledger")  # with the commit
    log.info(
        "decide_day %s: %d decided, %d messages planned, timings %s", run_date, written, planned, timings
    )
    return PlanReport(decided=written, messages_planned=planned, timings=timings)
