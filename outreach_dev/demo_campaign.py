"""A finished campaign with results, for the demo: its days are run through the real pipeline, the
providers' side and the customers' response are simulated.

For each day of the campaign's (past) window: the audience is loaded as candidates, the day is
decided by the real engine and campaign rules (``planning.decide_day``), and the planned messages
are claimed and marked sent in the ledger. Then, seeded and labelled ``demo`` as provider: most
emails are delivered and some clicked (delivery events); and a share of customers open the offered
product within the attribution window — more often when contacted, by a set effect per variant and
channel — written as holdings with their ``opened_at``. ``outreach campaigns report`` then shows a
real, recoverable result. Needs customers and holdings (the synthetic bank) in the database.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, insert, select

from outreach import ledger
from outreach.campaigns import state
from outreach.campaigns.audience import CampaignAudience
from outreach.campaigns.loader import load_file
from outreach.campaigns.tables import CampaignAssignment, assignments_with_messages
from outreach.candidates import load_candidates
from outreach.config import Settings, load_offers
from outreach.db import session_scope
from outreach.models import Decision, DeliveryEventRecord, Holding, Message
from outreach.planning import decide_day

DEMO_CAMPAIGN = "savings-autumn-2026"
BANK_ZONE = ZoneInfo("Europe/Amsterdam")
BASE_RATE = 0.03  # anyone in the audience opens a savings account within 30 days at this rate
EFFECT = {("A", "email"): 0.025, ("B", "email"): 0.045, ("A", "letter"): 0.02, ("B", "letter"): 0.02}
CLICK_RATE = {"A": 0.06, "B": 0.09}
BOUNCE_RATE = 0.03
MEAN_DAYS_TO_OPEN = 8.0


@dataclass
class DemoSummary:
    campaign: str
    days: int = 0
    entered: int = 0
    treated: int = 0
    control: int = 0
    messages: int = 0
    clicks: int = 0
    conversions: int = 0
    skipped: bool = False  # the campaign already had entries: nothing was added

    def line(self) -> str:
        if self.skipped:
            return f"campaign {self.campaign}: already simulated, left as it is"
        return (
            f"campaign {self.campaign}: {self.days} days simulated, {self.entered:,} entered "
            f"({self.treated:,} treated, {self.control:,} control), {self.messages:,} messages, "
            f"{self.clicks:,} clicks, {self.conversions:,} products opened"
        )


def seed_demo_campaign(
    engine: Engine, settings: Settings | None = None, name: str = DEMO_CAMPAIGN, seed: int = 7
) -> DemoSummary:
    """Simulate the (finished) campaign ``name`` from campaigns/ into the database; idempotent."""
    settings = settings or Settings()
    offers = load_offers(settings.offers_file)
    item = load_file(settings.campaigns_dir / f"{name}.yaml", offers, settings.templates_dir)
    campaign = item.campaign
    summary = DemoSummary(name)
    state.sync(engine, [item])
    with session_scope(engine) as session:
        if session.scalar(
            select(func.count()).select_from(CampaignAssignment).where(CampaignAssignment.campaign == name)
        ):
            summary.skipped = True
            return summary
    rng = random.Random(seed)
    product = {o.code: o.product for o in offers.offers}
    day = campaign.window.start
    while day <= campaign.window.end:
        morning = datetime.combine(day, time(7), BANK_ZONE).astimezone(UTC)  # before the send times
        load_candidates(engine, day, CampaignAudience(engine, [campaign]), offer_codes=list(offers.by_code()))
        decide_day(engine, day, offers, now=morning)
        summary.messages += _send_day(engine, day, rng, summary)
        summary.days += 1
        day += timedelta(days=1)
    with session_scope(engine) as session:
        entries = session.execute(assignments_with_messages(name)).all()
        held = {(c, p) for c, p in session.execute(select(Holding.customer_id, Holding.product)).all()}
        opened = []
        for _, customer_id, offer_code, entered_on, arm, variant, channel, _, status in entries:
            summary.entered += 1
            summary.treated += arm == "treatment"
            summary.control += arm == "control"
            chance = BASE_RATE
            if arm == "treatment" and status in ("sent", "delivered"):
                chance += EFFECT.get((variant, channel), 0.0)
            key = (customer_id, product[offer_code])
            if key in held or rng.random() >= chance:
                continue
            delay = min(int(rng.expovariate(1 / MEAN_DAYS_TO_OPEN)), campaign.attribution_days)
            held.add(key)
            opened.append(
                {
                    "customer_id": customer_id,
                    "product": key[1],
                    "opened_at": entered_on + timedelta(days=delay),
                }
            )
        if opened:
            session.execute(insert(Holding), opened)
        summary.conversions = len(opened)
    return summary


def _send_day(engine: Engine, day: date, rng: random.Random, summary: DemoSummary) -> int:
    """The providers' side of one day: every due message sent; emails delivered or bounced, clicked."""
    with session_scope(engine) as session:
        ids = list(session.scalars(select(Message.id).where(Message.run_date == day).order_by(Message.id)))
        variants = dict(
            session.execute(
                select(Message.id, CampaignAssignment.variant)
                .join(Decision, Decision.id == Message.decision_id)
                .join(CampaignAssignment, CampaignAssignment.candidate_id == Decision.candidate_id)
                .where(Message.run_date == day)
            ).all()
        )
        channels = dict(
            session.execute(select(Message.id, Message.channel).where(Message.run_date == day)).all()
        )
    won = ledger.claim(engine, ids, "demo-simulation")
    stamp = datetime.combine(day, time(9), BANK_ZONE).astimezone(UTC)
    with session_scope(engine) as session:
        ledger.record_sent(session, "demo", {mid: f"demo-{mid}" for mid in won})
        emails = [mid for mid in won if channels[mid] == "email"]
        bounced = [mid for mid in emails if rng.random() < BOUNCE_RATE]
        delivered = [mid for mid in emails if mid not in set(bounced)]
        ledger.transition(session, bounced, "bounced", expected="sent", detail="demo simulation")
        ledger.transition(session, delivered, "delivered", expected="sent", detail="demo simulation")
        clicks = [mid for mid in delivered if rng.random() < CLICK_RATE.get(variants.get(mid) or "A", 0.06)]
        if clicks:
            session.execute(
                insert(DeliveryEventRecord),
                [
                    {
                        "message_id": mid,
                        "channel": "email",
                        "provider": "demo",
                        "provider_event_id": f"demo-click-{mid}",
                        "provider_message_id": f"demo-{mid}",
                        "event_type": "clicked",
                        "occurred_at": stamp + timedelta(hours=rng.randint(1, 48)),
                        "received_at": stamp + timedelta(hours=49),
                    }
                    for mid in clicks
                ],
            )
        summary.clicks += len(clicks)
    return len(won)
