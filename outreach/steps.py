"""Steps of the daily run that the flow calls and the CLI reuses."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from pathlib import Path

from sqlalchemy import Engine

from outreach.candidates import FileDrop, PaymentSignals, load_candidates
from outreach.config import Settings


def load_day_candidates(engine: Engine, settings: Settings, run_date: date, candidates_file: str | None) -> dict:
    """Today's candidates from a file drop when one is given, else from the payment signals."""
    source = FileDrop(Path(candidates_file)) if candidates_file else PaymentSignals(engine)
    return asdict(load_candidates(engine, run_date, source))
