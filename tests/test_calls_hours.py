"""Calling hours: the customer's zone, working days, Dutch public holidays, DST."""

from datetime import UTC, date, datetime, time

import pytest

from outreach.calls.hours import DEFAULT_WINDOW, is_calling_day, may_call, next_window, window_on
from outreach.config import QuietHours

AMS = "Europe/Amsterdam"


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_window_is_nine_to_eight_local_in_winter():
    w = window_on(date(2026, 11, 24), AMS)
    assert (w.start, w.end) == (utc(2026, 11, 24, 8), utc(2026, 11, 24, 19))


def test_weekends_and_dutch_holidays_are_not_calling_days():
    assert is_calling_day(date(2026, 11, 24))  # Tuesday
    assert not is_calling_day(date(2026, 11, 28))  # Saturday
    assert not is_calling_day(date(2026, 4, 27))  # King's Day, a Monday
    assert not is_calling_day(date(2026, 12, 25))  # Christmas, a Friday
    assert not is_calling_day(date(2026, 5, 14))  # Ascension Day, a Thursday
    # the rule can be switched off in offers.yaml
    assert is_calling_day(date(2026, 4, 27), QuietHours(start=time(9), end=time(20)))


def test_kings_day_moves_the_window_to_the_next_working_day():
    w = next_window(utc(2026, 4, 27, 7), AMS)
    assert w.day == date(2026, 4, 28)
    assert w.start == utc(2026, 4, 28, 7)  # 09:00 CEST


def test_christmas_and_the_weekend_after_it_are_skipped():
    assert next_window(utc(2026, 12, 24, 20), AMS).day == date(2026, 12, 28)


def test_dst_spring_forward_keeps_local_hours():
    # clocks go forward on Sunday 29 March 2026: Friday 09:00 CET is 08:00 UTC, Monday 09:00 CEST is 07:00 UTC
    friday, monday = window_on(date(2026, 3, 27), AMS), window_on(date(2026, 3, 30), AMS)
    assert (friday.start, friday.end) == (utc(2026, 3, 27, 8), utc(2026, 3, 27, 19))
    assert (monday.start, monday.end) == (utc(2026, 3, 30, 7), utc(2026, 3, 30, 18))
    # the DST Sunday itself is no working day; from Friday night the next window is Monday's
    assert next_window(utc(2026, 3, 27, 19), AMS) == monday
    # with calls allowed every day, the Sunday's window is 09:00-20:00 CEST = 07:00-18:00 UTC
    every_day = QuietHours(start=time(9), end=time(20))
    sunday = window_on(date(2026, 3, 29), AMS, every_day)
    assert (sunday.start, sunday.end) == (utc(2026, 3, 29, 7), utc(2026, 3, 29, 18))


def test_dst_fall_back_day_has_an_extra_hour_before_the_window():
    every_day = QuietHours(start=time(9), end=time(20))
    sunday = window_on(date(2026, 10, 25), AMS, every_day)  # clocks went back at 03:00
    assert (sunday.start, sunday.end) == (utc(2026, 10, 25, 8), utc(2026, 10, 25, 19))
    assert not may_call(utc(2026, 10, 25, 7, 30), AMS, every_day)  # 08:30 CET
    assert may_call(utc(2026, 10, 25, 8, 0), AMS, every_day)


def test_a_customer_in_another_zone_is_called_in_their_own_hours():
    # 09:00 in New York is 14:00 UTC in November; 08:00 UTC (09:00 Amsterdam) is too early there
    assert not may_call(utc(2026, 11, 24, 8), "America/New_York")
    assert may_call(utc(2026, 11, 24, 14), "America/New_York")
    assert not may_call(utc(2026, 11, 25, 1), "America/New_York")  # 20:00 New York: window closed


@pytest.mark.parametrize(
    ("at", "allowed"),
    [
        (utc(2026, 11, 24, 7, 59), False),  # 08:59 Amsterdam
        (utc(2026, 11, 24, 8, 0), True),  # 09:00
        (utc(2026, 11, 24, 18, 59), True),  # 19:59
        (utc(2026, 11, 24, 19, 0), False),  # 20:00: the window is half-open
        (utc(2026, 11, 28, 10), False),  # Saturday
    ],
)
def test_may_call_at_the_edges(at, allowed):
    assert may_call(at, AMS, DEFAULT_WINDOW) is allowed


def test_an_unknown_zone_falls_back_to_amsterdam():
    assert window_on(date(2026, 11, 24), "Mars/Olympus") == window_on(date(2026, 11, 24), AMS)
