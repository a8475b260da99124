"""What the day-centred commands (``explain``, ``preview``) read first: the offers file and the day."""

from __future__ import annotations

from datetime import date

import typer
from rich.console import Console

from outreach.config import ConfigError, OffersFile, Settings, load_offers


def offers_and_day(settings: Settings, day: str, console: Console) -> tuple[OffersFile, date]:
    """The configured offers and ``day`` (YYYY-MM-DD); a bad file or date is said and exits 2."""
    try:
        return load_offers(settings.offers_file), date.fromisoformat(day)
    except (ConfigError, ValueError) as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
