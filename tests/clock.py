"""The suite's one clock.

A test that decides a fixed day stamps that day's events (consents, holds, sign-ins, webhooks) on the
same test clock, never on the wall clock: a test that mixes the two breaks the day the calendar passes
its fixed dates. `make test-future` runs the whole suite with every Python process's clock shifted
ahead (tests/timeshift/sitecustomize.py) to prove it; tests/test_clock.py checks the shift is there.

Product code takes a ``now``/``at``/``today`` argument wherever it stamps time; tests pass ``at(...)``.
Where a test drives code that reads the wall clock and offers no such argument (a web request, a CLI
command in this process), it pins this process's clock with the ``clock`` fixture or ``wall_clock_at``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time

import pytest
import time_machine

from tests.timeshift.sitecustomize import shift_requested  # noqa: F401 (re-exported)

# The suite's reference day and instant (a Tuesday, inside every channel's sending hours).
DAY = date(2026, 12, 1)
NOON = datetime.combine(DAY, time(12, 0), tzinfo=UTC)


def at(day: date, hour: int = 12, minute: int = 0) -> datetime:
    """An aware UTC instant on ``day``: how a test stamps an event of its own fixed day."""
    return datetime.combine(day, time(hour, minute), tzinfo=UTC)


@contextmanager
def wall_clock_at(moment: datetime, tick: bool = True) -> Iterator[time_machine.Traveller]:
    """This process's wall clock (datetime, date, time.time) starts at ``moment``; with ``tick`` it
    runs on from there, so timeouts and waits still work. Other processes keep their own clock."""
    with time_machine.travel(moment, tick=tick) as traveller:
        yield traveller


@pytest.fixture
def clock() -> Iterator[time_machine.Traveller]:
    """The wall clock of this test's process pinned at NOON of DAY (and ticking on); move it with
    ``clock.move_to(...)`` or ``clock.shift(timedelta(...))``."""
    with wall_clock_at(NOON) as traveller:
        yield traveller
