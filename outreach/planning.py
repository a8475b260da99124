"""Make the day's plan: decide every undecided candidate, record each decision, plan the ledger."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import Engine, delete, insert, select

from outreach.campaigns import seam as campaign_rules
from outreach.config import OffersFile
from outreach.db import session_scope
from outreach.ledger import plan_messages
from outreach.models import Decision, OfferRecord
from outreach.policy import decide, load_inputs


@dataclass(frozen=True)
class PlanReport:
    decided: int  # candidates decided in this call (0 when the day was already decided)
    messages_planned: int


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


def decide_day(engine: Engine, run_date: date, offers: OffersFile, now: datetime | None = None) -> PlanReport:
    """Decide the candidates of ``run_date`` that have no decision yet; idempotent per candidate."""
    now = now or datetime.now(UTC)
    snapshot_offers(engine, offers)
    inputs = load_inputs(engine, run_date, offers, now)
    with session_scope(engine) as session:
        decided = set(
            session.scalars(select(Decision.candidate_id).where(Decision.decision_date == run_date))
        )
    if decided:
        inputs.candidates = inputs.candidates.filter(~inputs.candidates["candidate_id"].is_in(list(decided)))
    frame = decide(inputs)
    frame = campaign_rules.apply(engine, frame, inputs)  # campaigns only narrow the engine's outcome
    rows = [
        {**row, "decision_date": run_date, "decided_at": now}
        for row in frame.rename({"candidate_id": "candidate_id"}).to_dicts()
    ]
    with session_scope(engine) as session:
        for start in range(0, len(rows), 5000):
            session.execute(insert(Decision.__table__), rows[start : start + 5000])  # Core: one executemany
        planned = plan_messages(session, run_date)
    return PlanReport(decided=len(rows), messages_planned=planned)
