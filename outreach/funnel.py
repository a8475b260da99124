"""The day's funnel: candidates → eligible → planned → sent → delivered, with every drop reason."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import Engine, func, select

from outreach.db import session_scope
from outreach.models import Candidate, Decision, Message
from outreach.statuses import LIVE_OUTCOMES, MessageStatus, Outcome

# reasons that come after eligibility: the candidate was eligible but another rule of the day won
POST_ELIGIBILITY = {"lost_arbitration", "over_capacity", "control_group", "campaign_budget"}
SENT_OR_LATER = {
    MessageStatus.SENT,
    MessageStatus.DELIVERED,
    MessageStatus.UNDELIVERED,
    MessageStatus.BOUNCED,
}


@dataclass
class Funnel:
    run_date: date
    candidates: int = 0
    undecided: int = 0
    eligible: int = 0
    planned: int = 0
    held: int = 0
    sent: int = 0
    delivered: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)
    channels: dict[str, dict[str, int]] = field(default_factory=dict)  # channel -> message status -> n

    def rows(self) -> list[dict[str, object]]:
        """Flat rows for a table artifact or a CSV."""
        stages = [
            ("candidates", self.candidates),
            ("eligible", self.eligible),
            ("planned (incl. held)", self.planned + self.held),
            ("held", self.held),
            ("sent", self.sent),
            ("delivered", self.delivered),
        ]
        rows = [{"section": "funnel", "name": n, "count": c} for n, c in stages]
        rows += [{"section": "reason", "name": r, "count": c} for r, c in sorted(self.reasons.items())]
        rows += [
            {"section": f"channel {ch}", "name": status, "count": c}
            for ch, statuses in sorted(self.channels.items())
            for status, c in sorted(statuses.items())
        ]
        return rows

    @property
    def balanced(self) -> bool:
        """Every candidate ended in exactly one outcome."""
        return self.undecided == 0 and sum(self.outcomes.values()) == self.candidates


def compute(engine: Engine, run_date: date) -> Funnel:
    funnel = Funnel(run_date)
    with session_scope(engine) as session:
        funnel.candidates = (
            session.scalar(
                select(func.count()).select_from(Candidate).where(Candidate.candidate_date == run_date)
            )
            or 0
        )
        for outcome, reason, count in session.execute(
            select(Decision.outcome, Decision.reason, func.count())
            .where(Decision.decision_date == run_date)
            .group_by(Decision.outcome, Decision.reason)
        ):
            funnel.outcomes[outcome] = funnel.outcomes.get(outcome, 0) + count
            funnel.reasons[reason] = funnel.reasons.get(reason, 0) + count
            if outcome in LIVE_OUTCOMES or reason in POST_ELIGIBILITY:
                funnel.eligible += count
        funnel.planned = funnel.outcomes.get(Outcome.PLANNED, 0)
        funnel.held = funnel.outcomes.get(Outcome.HELD, 0)
        funnel.undecided = funnel.candidates - sum(funnel.outcomes.values())
        for channel, status, count in session.execute(
            select(Message.channel, Message.status, func.count())
            .where(Message.run_date == run_date)
            .group_by(Message.channel, Message.status)
        ):
            funnel.channels.setdefault(channel, {})[status] = count
            if status in SENT_OR_LATER:
                funnel.sent += count
            if status == "delivered":
                funnel.delivered += count
    return funnel
