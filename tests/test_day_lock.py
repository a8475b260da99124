"""One run of a day at a time (issue 13 §4.3): a second run of the same day stops, having written
nothing, with one line naming when the first started; a run that died does not block the day."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import date

import pytest
from sqlalchemy import func, select

from outreach.day_lock import DayAlreadyRunning, day_lock
from outreach.db import make_engine, session_scope
from outreach.models import Candidate, DayRun, Decision
from tests.fixture_files import OFFERS_FILE

DAY = date(2026, 11, 18)
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

HOLDER = """
import sys, time
from datetime import date
from outreach.day_lock import day_lock
from outreach.db import make_engine
with day_lock(make_engine(sys.argv[1]), date.fromisoformat(sys.argv[2])):
    print("held", flush=True)
    time.sleep(600)
"""


def _hold_in_process(url: str, day: date) -> subprocess.Popen:
    """Another process that holds ``day`` until it is killed."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, url, day.isoformat()], stdout=subprocess.PIPE, text=True, cwd=REPO
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def _acquire_eventually(engine, day: date, attempts: int = 100) -> bool:
    """The lock once a dead holder's session is gone (PostgreSQL notices a killed client quickly)."""
    for _ in range(attempts):
        try:
            with day_lock(engine, day):
                return True
        except DayAlreadyRunning:
            time.sleep(0.1)
    return False


def _race(engine, day: date) -> list[object]:
    """Two threads start a run of ``day`` at the same moment; what each got."""
    barrier = threading.Barrier(2)
    released = threading.Event()
    outcomes: list[object] = []

    def run() -> None:
        barrier.wait()
        try:
            with day_lock(engine, day):
                outcomes.append("ran")
                released.wait(30)  # hold the day until the other run has been turned away
        except DayAlreadyRunning as exc:
            outcomes.append(exc)
            released.set()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcomes


def test_two_threads_racing_for_a_day_one_runs_the_other_is_told(engine):
    for round_no in range(5):
        day = date(2026, 11, 1 + round_no)
        outcomes = _race(engine, day)
        assert len(outcomes) == 2 and outcomes.count("ran") == 1, outcomes
        refused = next(o for o in outcomes if isinstance(o, DayAlreadyRunning))
        assert re.match(
            rf"day {day} is already running, started at \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d UTC", str(refused)
        )
        assert "\n" not in str(refused)
        with session_scope(engine) as session:  # released: the row is gone
            assert session.scalar(select(func.count()).select_from(DayRun)) == 0


def test_another_process_holding_the_day_turns_a_run_away_and_its_death_frees_it(db_url):
    engine = make_engine(db_url)
    holder = _hold_in_process(db_url, DAY)
    try:
        with (
            pytest.raises(
                DayAlreadyRunning, match=f"day {DAY} is already running, started at .* by .*/{holder.pid}"
            ),
            day_lock(engine, DAY),
        ):
            pass
        with day_lock(engine, date(2026, 11, 19)):  # another day is free
            pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        holder.stdout.close()
    # the dead run's row is still there, but its holder is gone: the day is not blocked for ever
    assert _acquire_eventually(engine, DAY)
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(DayRun)) == 0
    engine.dispose()


def test_the_lock_is_reentrant_within_one_run_only(engine):
    with day_lock(engine, DAY):
        with day_lock(engine, DAY):  # daily-outreach holds the day and calls dispatch-due
            pass
        failed: list[BaseException] = []

        def other_run() -> None:
            try:
                with day_lock(engine, DAY):
                    pass
            except DayAlreadyRunning as exc:
                failed.append(exc)

        thread = threading.Thread(target=other_run)
        thread.start()
        thread.join(30)
        assert len(failed) == 1
    with day_lock(engine, DAY):  # and the outer release freed it
        pass


@pytest.mark.prefect
def test_a_second_daily_run_of_a_running_day_writes_nothing(prefect_server, db_url, tmp_path, monkeypatch):
    from flows.daily import daily_outreach
    from outreach.config import get_settings
    from tests.factories import add_customers, customer

    monkeypatch.setenv("OUTREACH_DATABASE_URL", db_url)
    monkeypatch.setenv("OUTREACH_OUTBOX_DIR", str(tmp_path / "outbox"))
    get_settings.cache_clear()
    engine = make_engine(db_url)
    add_customers(engine, *[customer(f"C{i}") for i in range(5)])
    drop = tmp_path / "candidates.csv"
    drop.write_text(
        "customer_id,offer_code,trigger,trigger_ref,score,candidate_date\n"
        + "".join(f"C{i},SAVINGS_BOOST,large_balance,tx{i},0.5,{DAY}\n" for i in range(5))
    )
    holder = _hold_in_process(db_url, DAY)
    try:
        with pytest.raises(DayAlreadyRunning, match=f"day {DAY} is already running"):
            daily_outreach(run_date=DAY.isoformat(), candidates_file=str(drop))
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        holder.stdout.close()
        get_settings.cache_clear()
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(Candidate)) == 0
        assert session.scalar(select(func.count()).select_from(Decision)) == 0
    engine.dispose()


def test_outreach_run_of_a_running_day_says_so_in_one_line(db_url, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from outreach.cli import app
    from outreach.config import get_settings

    monkeypatch.setenv("OUTREACH_DATABASE_URL", db_url)
    monkeypatch.setenv("OUTREACH_OFFERS_FILE", str(OFFERS_FILE))
    monkeypatch.setenv("OUTREACH_OUTBOX_DIR", str(tmp_path / "outbox"))
    get_settings.cache_clear()
    holder = _hold_in_process(db_url, DAY)
    try:
        result = CliRunner().invoke(app, ["run", "--date", DAY.isoformat()])
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        holder.stdout.close()
        get_settings.cache_clear()
    assert result.exit_code == 1, (result.output, result.exception)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output
    assert re.match(rf"error: day {DAY} is already running, started at \d{{4}}-\d\d-\d\d ", lines[0])


@pytest.mark.postgres
def test_a_cut_lock_connection_does_not_fail_the_run_and_frees_the_day(pg_url):
    from sqlalchemy import text

    engine = make_engine(pg_url)
    # what an operator's pg_terminate_backend or a network cut does to the run's lock connection
    with day_lock(engine, DAY), engine.connect() as conn:
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_locks "
                "WHERE locktype = 'advisory' AND objid = :day AND pid <> pg_backend_pid()"
            ),
            {"day": DAY.toordinal()},
        )
    assert _acquire_eventually(engine, DAY)
    engine.dispose()
