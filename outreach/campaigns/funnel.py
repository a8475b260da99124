"""Each campaign's funnel for one day: how its candidates were decided and where its messages are.

Counts only, grouped by campaign: for the flow's per-campaign table artifacts and the CLI.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Engine, func, select

from outreach.campaigns.model import TRIGGER
from outreach.campaigns.tables import CampaignEvent
from outreach.db import session_scope
from outreach.models import Candidate, Decision, Message


def campaign_funnels(engine: Engine, run_date: date) -> dict[str, list[dict[str, object]]]:
    """{campaign: rows of (section, name, count)} for the campaigns that had candidates on ``run_date``."""
    funnels: dict[str, list[dict[str, object]]] = {}
    with session_scope(engine) as session:
        for name, count in session.execute(
            select(Candidate.trigger_ref, func.count())
            .where(Candidate.candidate_date == run_date, Candidate.trigger == TRIGGER)
            .group_by(Candidate.trigger_ref)
        ):
            funnels[name] = [{"section": "funnel", "name": "candidates", "count": count}]
        for name, outcome, reason, count in session.execute(
            select(Candidate.trigger_ref, Decision.outcome, Decision.reason, func.count())
            .join(Decision, Decision.candidate_id == Candidate.id)
            .where(Candidate.candidate_date == run_date, Candidate.trigger == TRIGGER)
            .group_by(Candidate.trigger_ref, Decision.outcome, Decision.reason)
            .order_by(Candidate.trigger_ref, Decision.outcome, Decision.reason)
        ):
            funnels.setdefault(name, []).append(
                {"section": f"decided {outcome}", "name": reason, "count": count}
            )
        for name, channel, status, count in session.execute(
            select(Candidate.trigger_ref, Message.channel, Message.status, func.count())
            .join(Decision, Decision.candidate_id == Candidate.id)
            .join(Message, Message.decision_id == Decision.id)
            .where(Candidate.candidate_date == run_date, Candidate.trigger == TRIGGER)
            .group_by(Candidate.trigger_ref, Message.channel, Message.status)
            .order_by(Candidate.trigger_ref, Message.channel, Message.status)
        ):
            funnels.setdefault(name, []).append(
                {"section": f"messages {channel}", "name": status, "count": count}
            )
        start = datetime.combine(run_date, time(), UTC)
        for name, count in session.execute(
            select(CampaignEvent.campaign, func.sum(CampaignEvent.count))
            .where(
                CampaignEvent.kind == "held_back",
                CampaignEvent.at >= start,
                CampaignEvent.at < start + timedelta(days=1),
                CampaignEvent.campaign.in_(list(funnels)),
            )
            .group_by(CampaignEvent.campaign)
        ):
            funnels[name].append(
                {"section": "pause", "name": "held back by a pause", "count": int(count or 0)}
            )
    return funnels
