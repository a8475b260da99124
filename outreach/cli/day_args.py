"""Days on the command line: one parser for every command's date options, and what "today" is."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import typer

from outreach.config import OffersFile, Settings, get_settings, load_offers

ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_day(value: str | date | None) -> date | None:
    """``YYYY-MM-DD`` and nothing else (Python also reads ``20261204``: too easy to mistype)."""
    if value is None or isinstance(value, date):
        return value
    if ISO_DAY.fullmatch(value.strip()):
        try:
            return date.fromisoformat(value.strip())
        except ValueError as exc:
            raise typer.BadParameter(f"{value!r} is not a date: {exc}") from None
    raise typer.BadParameter(f"{value!r} is not a date: use YYYY-MM-DD")


def parse_moment(value: str | datetime | None) -> datetime | None:
    """An ISO date and time (``2026-12-04T09:30``, optionally with an offset), for ``--at``."""
    if value is None or isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a time: use YYYY-MM-DDTHH:MM[+01:00]") from None


def DayOption(help: str, *names: str) -> Any:  # noqa: N802 - reads like typer.Option at the call
    """A ``--date`` option parsed by ``parse_day``; None when left out (see ``or_today``)."""
    return typer.Option(None, *(names or ("--date",)), parser=parse_day, metavar="YYYY-MM-DD", help=help)


def bank_today(settings: Settings | None = None) -> date:
    """The bank's calendar day (the policy's time zone), not the server's UTC date."""
    settings = settings or get_settings()
    zone = load_offers(settings.offers_file).policy.default_timezone
    return datetime.now(ZoneInfo(zone)).date()


def or_today(day: date | None, settings: Settings | None = None) -> date:
    return day if day is not None else bank_today(settings)


def offers_and_day(settings: Settings, day: date | None) -> tuple[OffersFile, date]:
    """The configured offers and the day (default the bank's today)."""
    offers = load_offers(settings.offers_file)
    return offers, day if day is not None else datetime.now(ZoneInfo(offers.policy.default_timezone)).date()
