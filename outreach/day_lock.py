"""One run of a day at a time: a second run of the same day stops before it writes anything.

Two runs of one day at once would both insert the day's decisions and call tasks (issue 13 §4.3).
A run holds a row in ``day_runs`` (who, since when) for the day while it works; a second run finds
it and raises DayAlreadyRunning naming its start. A run that died (SIGKILL, power loss) must not
block the day for ever, so a row is stale when its holder is gone:

- PostgreSQL: the run also holds a session-level advisory lock for the day on a connection of its
  own. The server releases it when that connection dies, so the lock, not the row, says who runs.
- SQLite (one machine): the holder's process id on this host no longer exists.

Within one run the lock is re-entrant (``daily-outreach`` holds the day and calls ``dispatch-due``).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime

from sqlalchemy import Connection, Engine, delete, insert, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from channels.errors import OutreachError
from outreach.db import as_utc
from outreach.models import DayRun

ADVISORY_NAMESPACE = 0x0D4E  # first key of pg_advisory_lock(int, int): this lock's own space
# the (database, day) pairs this run holds, for re-entrance
_held: ContextVar[frozenset[tuple[str, date]]] = ContextVar("outreach_days_held", default=frozenset())


class DayAlreadyRunning(OutreachError, RuntimeError):
    """Another run of the same day is in progress."""

    def __init__(self, day: date, started_at: datetime | None, holder: str | None) -> None:
        since = f"started at {as_utc(started_at):%Y-%m-%d %H:%M:%S} UTC" if started_at else "just started"
        by = f" by {holder}" if holder else ""
        super().__init__(
            f"day {day.isoformat()} is already running, {since}{by}: wait for it to finish "
            "(`outreach status --date " + day.isoformat() + "` shows its progress), then run it again"
        )
        self.day = day
        self.started_at = started_at
        self.holder = holder


def this_process() -> str:
    return f"{socket.gethostname()[:40]}/{os.getpid()}"


def _process_alive(holder: str) -> bool:
    """Whether the SQLite holder ``host/pid`` still runs; a holder on another host counts as alive."""
    host, _, pid = holder.rpartition("/")
    if host != socket.gethostname()[:40] or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def _current(conn: Connection, day: date) -> tuple[str, datetime] | None:
    row = conn.execute(select(DayRun.holder, DayRun.started_at).where(DayRun.run_date == day)).one_or_none()
    return (row.holder, row.started_at) if row else None


def _claim_row(engine: Engine, day: date, holder: str, stale=lambda holder: False) -> None:
    """Insert the day's row, or take over a stale one; DayAlreadyRunning if a live run holds it."""
    for _ in range(3):  # a row that vanishes between our insert and our read: try again
        now = datetime.now(UTC)
        try:
            with engine.begin() as conn:
                conn.execute(insert(DayRun).values(run_date=day, holder=holder, started_at=now))
            return
        except IntegrityError:
            pass
        with engine.begin() as conn:
            current = _current(conn, day)
            if current is None:
                continue
            other, started_at = current
            if not stale(other):
                raise DayAlreadyRunning(day, started_at, other)
            taken = conn.execute(  # compare-and-set: of two runs taking over, one wins
                update(DayRun)
                .where(DayRun.run_date == day, DayRun.holder == other, DayRun.started_at == started_at)
                .values(holder=holder, started_at=now)
            ).rowcount
            if taken == 1:
                return
    current = None
    with engine.connect() as conn:
        current = _current(conn, day)
    raise DayAlreadyRunning(day, *(reversed(current) if current else (None, None)))


def _wait_for_row(engine: Engine, day: date, tries: int = 40) -> tuple[str, datetime] | None:
    """The holder's row, which it writes just after taking the advisory lock: to say since when."""
    for _ in range(tries):
        with engine.connect() as conn:
            current = _current(conn, day)
        if current is not None:
            return current
        time.sleep(0.05)
    return None


def _release_row(engine: Engine, day: date, holder: str) -> None:
    with engine.begin() as conn:
        conn.execute(delete(DayRun).where(DayRun.run_date == day, DayRun.holder == holder))


@contextmanager
def _postgresql(engine: Engine, day: date, holder: str) -> Iterator[None]:
    with engine.connect() as keeper:
        got = keeper.execute(
            text("SELECT pg_try_advisory_lock(:space, :day)"),
            {"space": ADVISORY_NAMESPACE, "day": day.toordinal()},
        ).scalar_one()
        keeper.commit()
        if not got:
            current = _wait_for_row(engine, day)
            raise DayAlreadyRunning(day, current[1] if current else None, current[0] if current else None)
        try:
            # the lock decides; the row (a dead run's may linger) only says who runs since when
            _claim_row(engine, day, holder, stale=lambda other: True)
            try:
                yield
            finally:
                _release_row(engine, day, holder)
        finally:
            try:
                keeper.execute(
                    text("SELECT pg_advisory_unlock(:space, :day)"),
                    {"space": ADVISORY_NAMESPACE, "day": day.toordinal()},
                )
                keeper.commit()
            except DBAPIError:  # the connection was cut (and the lock went with it): not the run's failure
                keeper.invalidate()


@contextmanager
def _sqlite(engine: Engine, day: date, holder: str) -> Iterator[None]:
    _claim_row(engine, day, holder, stale=lambda other: not _process_alive(other))
    try:
        yield
    finally:
        _release_row(engine, day, holder)


@contextmanager
def day_lock(engine: Engine, day: date, holder: str | None = None) -> Iterator[None]:
    """Hold ``day`` for this run; DayAlreadyRunning if another run holds it. Re-entrant within one
    run's context (a subflow sees its parent's context; another thread or process does not)."""
    key = (engine.url.render_as_string(hide_password=True), day)
    if key in _held.get():
        yield
        return
    hold = _postgresql if engine.dialect.name == "postgresql" else _sqlite
    with hold(engine, day, holder or this_process()):
        token = _held.set(_held.get() | {key})
        try:
            yield
        finally:
            _held.reset(token)
