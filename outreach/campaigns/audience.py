"""The campaigns' candidate source: customers matching each running campaign's audience filter.

The filter runs in the database (one query per campaign, streamed), so it holds for ten million
customers. A customer already assigned to the campaign (contacted or in its control group) does not
come back: each customer enters a campaign once. Candidates then go through the same decision engine
as every other candidate; ``candidates.trigger`` is ``campaign`` and ``trigger_ref`` the campaign name.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, ClassVar

from sqlalchemy import Engine, Select, and_, exists, func, or_, select

from outreach.campaigns.model import TRIGGER, Campaign
from outreach.campaigns.state import budget_used
from outreach.campaigns.tables import CampaignAssignment
from outreach.models import Customer, Holding

c = Customer.__table__
h = Holding.__table__
a = CampaignAssignment.__table__


def years_before(day: date, years: int) -> date:
    """The same calendar day ``years`` earlier (29 February becomes 28 February)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def _holds(product: str, run_date: date):
    return exists(
        select(h.c.id).where(
            h.c.customer_id == c.c.customer_id,
            h.c.product == product,
            or_(h.c.opened_at.is_(None), h.c.opened_at <= run_date),  # held on the run date
        )
    )


def audience_query(campaign: Campaign, run_date: date) -> Select:
    """The customer ids in the campaign's audience on ``run_date`` that have not entered it before."""
    audience = campaign.audience
    conditions = [
        ~exists(select(a.c.id).where(a.c.campaign == campaign.name, a.c.customer_id == c.c.customer_id))
    ]
    if audience.age is not None:
        conditions.append(c.c.birth_date <= years_before(run_date, audience.age.min))
        conditions.append(c.c.birth_date > years_before(run_date, audience.age.max + 1))
    if audience.postcode_prefixes:
        conditions.append(or_(*[c.c.postal_code.like(f"{prefix}%") for prefix in audience.postcode_prefixes]))
    if audience.cities:
        conditions.append(func.lower(c.c.city).in_([city.lower() for city in audience.cities]))
    if audience.languages:
        conditions.append(c.c.language.in_(audience.languages))
    conditions += [_holds(product, run_date) for product in audience.holds]
    conditions += [~_holds(product, run_date) for product in audience.not_holds]
    return select(c.c.customer_id).where(and_(*conditions)).order_by(c.c.customer_id)


@dataclass
class CampaignAudience:
    """A ``CandidateSource``: one candidate per audience customer and campaign offer, for each campaign
    that runs on the day (active or paused; drafts, scheduled and finished campaigns make none)."""

    engine: Engine
    campaigns: Sequence[Campaign]
    chunk_rows: int = 5000
    name: ClassVar[str] = "campaigns"

    def chunks(self, run_date: date) -> Iterator[list[dict[str, Any]]]:
        names = [c.name for c in self.campaigns]
        used = budget_used(self.engine, names, run_date) if names else {}
        for campaign in sorted(self.campaigns, key=lambda x: x.name):
            if not campaign.runs_on(run_date):
                continue
            total = campaign.budget.total
            if total is not None and used.get(campaign.name, (0, 0))[1] >= total:
                continue  # spent: no candidates (the seam would only give them campaign_budget)
            score = campaign.priority / 100  # ranks campaigns against each other in the engine's arbitration
            with self.engine.connect() as conn:
                conn = conn.execution_options(stream_results=True, yield_per=self.chunk_rows)
                for partition in conn.execute(audience_query(campaign, run_date)).partitions():
                    yield [
                        {
                            "customer_id": customer_id,
                            "offer_code": offer_code,
                            "trigger": TRIGGER,
                            "trigger_ref": campaign.name,
                            "score": score,
                            "candidate_date": run_date,
                        }
                        for (customer_id,) in partition
                        for offer_code in campaign.offers
                    ]
