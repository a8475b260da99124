"""Moves the wall clock of every Python process of a test run ahead when OUTREACH_TEST_CLOCK_SHIFT asks.

`make test-future` puts this folder on PYTHONPATH, so Python imports this file at start-up in pytest and
in every Python process the suite starts (dispatch workers, uvicorn, the Prefect server, CLI runs,
benchmarks): each travels by the same offset and keeps ticking, so they agree with each other.
time-machine moves datetime/date/time.time and leaves monotonic time alone (timeouts still work).
libfaketime was tried first: in Debian's 0.9.10 Python's time.sleep fails with EINVAL when monotonic
time is left real, and threading waits hang when it is faked.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def shift_requested() -> timedelta:
    """OUTREACH_TEST_CLOCK_SHIFT ("+400d", "+9600h", "-30m" or plain seconds); zero when unset."""
    raw = os.environ.get("OUTREACH_TEST_CLOCK_SHIFT", "").strip()
    if not raw:
        return timedelta(0)
    found = re.fullmatch(r"([+-]?\d+(?:\.\d+)?)([dhms]?)", raw)
    if not found:
        raise ValueError(f"OUTREACH_TEST_CLOCK_SHIFT={raw!r}: expected e.g. +400d, +9600h or +34560000")
    return timedelta(**{UNITS[found.group(2) or "s"]: float(found.group(1))})


def python_path(*first: str | Path) -> str:
    """PYTHONPATH for a child process that sets its own: ``first`` (e.g. the checkout), then this folder
    while a shift is on, so the child travels with the suite."""
    parts = [str(p) for p in first] + ([str(HERE)] if shift_requested() else [])
    return os.pathsep.join(parts)


def shift_env() -> dict[str, str]:
    """The variable to pass to a child process built from a filtered environment."""
    raw = os.environ.get("OUTREACH_TEST_CLOCK_SHIFT", "")
    return {"OUTREACH_TEST_CLOCK_SHIFT": raw} if raw else {}


def _start() -> None:
    shift = shift_requested()
    if not shift:
        return
    import time

    import time_machine

    traveller = time_machine.travel(time.time() + shift.total_seconds(), tick=True).start()
    # Setting off takes a moment that would differ from process to process: correct the offset
    # against the real clock so every process of the run is exactly `shift` ahead, not roughly.
    error = time.time() - time_machine.escape_hatch.time.time() - shift.total_seconds()
    traveller.shift(-error)


if __name__ == "sitecustomize":  # at start-up only, not when tests/clock.py imports shift_requested
    _start()
