"""A team's day at a glance, for the supervisor: tasks by state, work and outcomes per agent."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from outreach.calls.models import Agent, CallAttempt, CallLead, CallTask

STATES = ("open", "claimed", "done", "expired", "cancelled")
OUTCOME_LABELS = {
    "interested": "Interested",
    "not_interested": "Not interested",
    "no_answer": "No answer",
    "wrong_number": "Wrong number",
    "do_not_contact": "Do not contact",
}


@dataclass
class AgentProgress:
    username: str
    display_name: str
    in_hand: int = 0  # claimed right now
    done: int = 0  # tasks this agent finished
    expired: int = 0  # tasks that expired after this agent's last try
    calls: int = 0  # every call made, retries included
    outcomes: Counter[str] = field(default_factory=Counter)


@dataclass
class TeamProgress:
    day: date
    states: Counter[str]
    outcomes: Counter[str]  # every call's outcome
    leads: int
    agents: list[AgentProgress]

    @property
    def total(self) -> int:
        return sum(self.states.values())


def team_progress(session: Session, team_id: int, day: date) -> TeamProgress:
    agents = {
        a.id: AgentProgress(a.username, a.display_name)
        for a in session.scalars(select(Agent).where(Agent.team_id == team_id).order_by(Agent.username))
    }
    day_tasks = select(CallTask.id).where(CallTask.team_id == team_id, CallTask.call_date == day)
    states = Counter(
        dict(
            session.execute(
                select(CallTask.status, func.count())
                .where(CallTask.id.in_(day_tasks))
                .group_by(CallTask.status)
            ).all()
        )
    )
    for agent_id, status, n in session.execute(
        select(func.coalesce(CallTask.claimed_by, CallTask.last_agent_id), CallTask.status, func.count())
        .where(CallTask.id.in_(day_tasks), CallTask.status.in_(("claimed", "done", "expired")))
        .group_by(func.coalesce(CallTask.claimed_by, CallTask.last_agent_id), CallTask.status)
    ):
        if agent_id in agents:
            row = agents[agent_id]
            if status == "claimed":
                row.in_hand += n
            elif status == "done":
                row.done += n
            else:
                row.expired += n
    outcomes: Counter[str] = Counter()
    for agent_id, outcome, n in session.execute(
        select(CallAttempt.agent_id, CallAttempt.outcome, func.count())
        .where(CallAttempt.task_id.in_(day_tasks))
        .group_by(CallAttempt.agent_id, CallAttempt.outcome)
    ):
        outcomes[outcome] += n
        if agent_id in agents:
            agents[agent_id].outcomes[outcome] += n
            agents[agent_id].calls += n
    leads = session.scalar(select(func.count()).select_from(CallLead).where(CallLead.task_id.in_(day_tasks)))
    return TeamProgress(day, states, outcomes, leads or 0, list(agents.values()))
