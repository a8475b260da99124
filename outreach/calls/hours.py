"""Calling hours: a customer may be called only inside the call window of their own time zone.

The window comes from ``policy.quiet_hours["call"]`` in offers.yaml (default 09:00-20:00, working
days only). Working days are Monday to Friday minus Dutch public holidays (``holidays`` package).
Times are built with ``zoneinfo``, so a window keeps its local wall-clock hours across DST changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

from outreach.config import QuietHours

DEFAULT_WINDOW = QuietHours(start=time(9), end=time(20), working_days_only=True)
HOLIDAY_COUNTRY = "NL"
SEARCH_DAYS = 14  # a calling day is never further away than Christmas plus a weekend


@dataclass(frozen=True, slots=True)
class Window:
    day: date  # the customer's local calling day
    start: datetime  # aware UTC
    end: datetime  # aware UTC

    def contains(self, at: datetime) -> bool:
        return self.start <= at < self.end


@lru_cache(maxsize=8)
def _holidays(country: str) -> holidays.HolidayBase:
    return holidays.country_holidays(country)


def zone(name: str | None, default: str = "Europe/Amsterdam") -> ZoneInfo:
    try:
        return ZoneInfo(name or default)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(default)


def is_calling_day(day: date, rules: QuietHours = DEFAULT_WINDOW, country: str = HOLIDAY_COUNTRY) -> bool:
    if not rules.working_days_only:
        return True
    return day.weekday() < 5 and day not in _holidays(country)


def window_on(day: date, tz: str | None, rules: QuietHours = DEFAULT_WINDOW) -> Window:
    """The call window of ``day`` in the customer's zone, as UTC instants."""
    local = zone(tz)
    start = datetime.combine(day, rules.start, tzinfo=local)
    end = datetime.combine(day, rules.end, tzinfo=local)
    if end <= start:  # a window such as 22:00-02:00 runs into the next day
        end = datetime.combine(day + timedelta(days=1), rules.end, tzinfo=local)
    return Window(day, start.astimezone(UTC), end.astimezone(UTC))


def next_window(
    not_before: datetime,
    tz: str | None,
    rules: QuietHours = DEFAULT_WINDOW,
    country: str = HOLIDAY_COUNTRY,
) -> Window:
    """The first call window that is still open at or after ``not_before`` (aware)."""
    day = not_before.astimezone(zone(tz)).date()
    for _ in range(SEARCH_DAYS):
        if is_calling_day(day, rules, country):
            window = window_on(day, tz, rules)
            if not_before < window.end:
                return window
        day += timedelta(days=1)
    raise ValueError(f"no calling day within {SEARCH_DAYS} days after {not_before.isoformat()}")


def may_call(at: datetime, tz: str | None, rules: QuietHours = DEFAULT_WINDOW) -> bool:
    """Is ``at`` (aware) inside calling hours on a calling day for a customer in zone ``tz``?"""
    day = at.astimezone(zone(tz)).date()
    return any(  # the day before too: its window may run past midnight
        is_calling_day(d, rules) and window_on(d, tz, rules).contains(at)
        for d in (day, day - timedelta(days=1))
    )
