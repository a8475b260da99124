"""Steps of the daily run that the flow calls and the CLI reuses."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date

from sqlalchemy import Engine

from outreach.campaigns.daily import load_campaign_candidates
from outreach.candidates import FileDrop, PaymentSignals, load_candidates
from outreach.config import Settings, load_offers
from outreach.triggers import triggers_for


def load_day_candidates(
    engine: Engine, settings: Settings, run_date: date, candidates_file: str | None
) -> dict:
    """Today's candidates from a file drop when one is given, else from the payment signals; and the
    candidates of the campaigns that run today."""
    codes = set(load_offers(settings.offers_file).by_code())
    if candidates_file:
        source = FileDrop(candidates_file)
    else:  # the triggers beside the offers file: the same definitions the live lane uses
        source = PaymentSignals(engine, triggers=triggers_for(settings.offers_file, codes))
    report = load_candidates(engine, run_date, source, offer_codes=codes)
    counts = asdict(report)
    counts.pop("rejections", None)  # row-level detail stays in import_rejections, not in Prefect
    counts["campaigns"] = load_campaign_candidates(engine, settings, run_date)
    return counts
