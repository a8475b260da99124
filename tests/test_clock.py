"""The suite's clock is the one it claims: real in `make test`, shifted in `make test-future`.

PostgreSQL's server runs outside the shift (only Python processes of the run travel), so its now() is
the machine's real time to compare with.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import create_engine, text

from tests.clock import DAY, NOON, at, shift_requested, wall_clock_at


def ahead_of_the_real_clock() -> float:
    hatch = time_machine.escape_hatch
    return time.time() - (hatch.time.time() if hatch.is_travelling() else time.time())


@pytest.mark.postgres
def test_this_process_runs_on_the_requested_clock(pg_url):
    engine = create_engine(pg_url)
    try:
        with engine.connect() as conn:
            real = conn.execute(text("select now()")).scalar_one()
    finally:
        engine.dispose()
    ahead = datetime.now(UTC) - real
    assert abs(ahead - shift_requested()) < timedelta(minutes=5), f"clock is {ahead} ahead of the server"


def test_the_shift_reaches_python_processes_the_suite_starts_exactly():
    """Every process is the same offset ahead, to the millisecond: a worker's claim stamped just
    before the test looks must never seem to come from the test's future."""
    import subprocess
    import sys

    probe = "from tests.test_clock import ahead_of_the_real_clock as a; print(a())"
    child = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    here = ahead_of_the_real_clock()
    expected = shift_requested().total_seconds()
    assert abs(float(child.stdout) - expected) < 0.005 and abs(here - expected) < 0.005


def test_wall_clock_at_pins_this_process_and_ticks_on():
    with wall_clock_at(at(DAY, 9, 30)):
        first = datetime.now(UTC)
        assert first.date() == DAY and (first.hour, first.minute) == (9, 30)
    assert datetime.now(UTC) > NOON  # back on the suite's (possibly shifted) clock afterwards


def test_clock_fixture_starts_at_noon_of_the_reference_day(clock):
    assert abs(datetime.now(UTC) - NOON) < timedelta(minutes=1)
    clock.shift(timedelta(days=400))
    assert datetime.now(UTC).date() == DAY + timedelta(days=400)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("+400d", timedelta(days=400)), ("+9600h", timedelta(hours=9600)), ("86400", timedelta(days=1))],
)
def test_shift_syntax(monkeypatch, raw, expected):
    monkeypatch.setenv("OUTREACH_TEST_CLOCK_SHIFT", raw)
    assert shift_requested() == expected


def test_an_unreadable_shift_is_named(monkeypatch):
    monkeypatch.setenv("OUTREACH_TEST_CLOCK_SHIFT", "next year")
    with pytest.raises(ValueError, match="OUTREACH_TEST_CLOCK_SHIFT='next year'"):
        shift_requested()


def test_children_with_their_own_pythonpath_still_travel(monkeypatch, tmp_path):
    from tests.timeshift.sitecustomize import HERE, python_path, shift_env

    monkeypatch.delenv("OUTREACH_TEST_CLOCK_SHIFT", raising=False)
    assert python_path(tmp_path) == str(tmp_path) and shift_env() == {}
    monkeypatch.setenv("OUTREACH_TEST_CLOCK_SHIFT", "+400d")
    assert python_path(tmp_path).split(os.pathsep) == [str(tmp_path), str(HERE)]
    assert shift_env() == {"OUTREACH_TEST_CLOCK_SHIFT": "+400d"}
