"""Sending windows: quiet hours per channel in the customer's own time zone, working days, holidays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from outreach.config import QuietHours


@lru_cache(maxsize=16)
def _holidays(country: str, year: int) -> holidays.HolidayBase:
    return holidays.country_holidays(country, years=year)


def is_working_day(day, country: str = "NL") -> bool:
    return day.weekday() < 5 and day not in _holidays(country, day.year)


def release_time(at: datetime, window: QuietHours, tz_name: str, country: str = "NL") -> datetime | None:
    """None when ``at`` lies inside the window; otherwise the next moment (UTC) the window opens.

    Works on wall-clock times in the customer's zone, so a DST change moves the UTC instant,
    never the local opening hour.
    """
    zone = ZoneInfo(tz_name)
    local = at.astimezone(zone)
    if _inside(local, window, country):
        return None
    day = local.date()
    for _ in range(15):  # a window opens within two weeks even around Christmas
        opening = datetime.combine(day, window.start, tzinfo=zone)
        if opening > local and _open_day(day, window, country):
            return opening.astimezone(UTC)
        day += timedelta(days=1)
    raise ValueError(f"no sending window within 15 days for {window}")


def _open_day(day, window: QuietHours, country: str) -> bool:
    return not window.working_days_only or is_working_day(day, country)


def _inside(local: datetime, window: QuietHours, country: str) -> bool:
    return _open_day(local.date(), window, country) and window.start <= local.time() < window.end
