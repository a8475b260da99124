"""The campaigns' part of a day's run: read campaigns/, store their definitions, load their candidates."""

from __future__ import annotations

import logging
from datetime import date

from sqlalchemy import Engine

from outreach.campaigns import state
from outreach.campaigns.audience import CampaignAudience
from outreach.campaigns.loader import load_directory
from outreach.candidates import load_candidates
from outreach.config import Settings, load_offers

log = logging.getLogger(__name__)


def load_campaign_candidates(engine: Engine, settings: Settings, run_date: date) -> dict:
    """Sync every valid campaign file to the database and load the candidates of those running today.

    An invalid campaign file does not stop the day (the offers and other campaigns still go out): it
    is left out, and its problems are logged and returned (file:line: key: reason, no personal data).
    """
    offers = load_offers(settings.offers_file)
    loaded, problems = load_directory(settings.campaigns_dir, offers, settings.templates_dir)
    for problem in problems:
        log.error("campaign file left out: %s", problem)
    state.sync(engine, loaded)
    running = [item.campaign for item in loaded if item.campaign.runs_on(run_date)]
    counts: dict = {"running": sorted(c.name for c in running), "invalid": [str(p) for p in problems]}
    if running:
        report = load_candidates(
            engine, run_date, CampaignAudience(engine, running), offer_codes=list(offers.by_code())
        )
        counts.update(loaded=report.loaded, duplicates=report.duplicates, rejected=report.rejected)
    return counts
