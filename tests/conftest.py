"""Shared fixtures: a migrated database on SQLite and on this machine's PostgreSQL."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from outreach.db import make_engine, upgrade
from tests.clock import clock  # noqa: F401 (the suite's one clock, a fixture)
from tests.fixture_files import CAMPAIGNS_DIR, OFFERS_FILE

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# The suite runs at any hour, so the send-time quiet-hours re-check is off for tests that are
# about something else (worker processes inherit this); tests/test_dispatch_windows.py checks it
# with a fixed clock. Decision-time quiet hours stay in force everywhere.
os.environ.setdefault("OUTREACH_SEND_WINDOW_CHECK", "false")
# A pytest-xdist worker runs with COLUMNS=80 set (a serial run has none): the CLI's rich consoles,
# made at import, would keep 80 columns and ignore the width a test's CliRunner asks for.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.pop("COLUMNS", None)
# Commands a test runs without naming the files read the fixture copies, not the operator's working files.
os.environ.setdefault("OUTREACH_OFFERS_FILE", str(OFFERS_FILE))
os.environ.setdefault("OUTREACH_CAMPAIGNS_DIR", str(CAMPAIGNS_DIR))

PG_ADMIN_URL = os.environ.get("OUTREACH_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REPO = Path(__file__).resolve().parent.parent


def _pg_up() -> bool:
    try:
        engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return True
    except Exception:
        return False


def ensure_postgres() -> None:
    """Start the machine's PostgreSQL cluster if it is down (CI runs on a fresh boot)."""
    if _pg_up():
        return
    versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
    if not versions or not shutil.which("pg_ctlcluster"):
        pytest.fail("PostgreSQL is not running and pg_ctlcluster is not available to start it")
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"],
        check=False,
        capture_output=True,
    )
    for _ in range(60):
        if _pg_up():
            return
        time.sleep(0.5)
    pytest.fail("PostgreSQL did not come up")


@pytest.fixture(scope="session")
def pg_template() -> str:
    """A migrated template database; each test clones it (CREATE DATABASE ... TEMPLATE is fast)."""
    ensure_postgres()
    name = f"outreach_tpl_{os.getpid()}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    upgrade(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}")
    yield name
    for done in _drops:  # the clones first; a failed drop raises here instead of vanishing
        done.result()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


# DROP DATABASE waits for a checkpoint (0.1-2.5 s here): a test's clone is dropped on this one
# background thread while the next tests run; the session's end waits for the last drop.
_dropper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pg-drop")
_drops: list[Future] = []


# no pool: the server (max_connections 100) is shared with the integration cluster and other runs,
# so a clone waiting to be dropped must not hold an idle connection
_admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool)


def _fresh_pg(template: str) -> tuple[str, Callable[[], None]]:
    name = f"outreach_t_{uuid.uuid4().hex[:12]}"
    with _admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))

    def drop_now() -> None:
        with _admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def drop() -> None:
        _drops.append(_dropper.submit(drop_now))

    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}", drop


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """A migrated SQLite file, made once per session (per xdist worker): a test copies it instead of
    running every Alembic migration again (about a second each on this machine)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "outreach.db"
    upgrade(f"sqlite:///{path}")
    with sqlite3.connect(path) as conn:  # fold the WAL into the file so one copy holds everything
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return path


@pytest.fixture
def migrated_sqlite(sqlite_template) -> Callable[[Path], str]:
    """``migrated_sqlite(path)`` puts a migrated database at ``path`` and returns its URL."""

    def make(path: Path) -> str:
        shutil.copyfile(sqlite_template, path)
        return f"sqlite:///{path}"

    return make


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path) -> str:
    """A freshly migrated database URL, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield request.getfixturevalue("migrated_sqlite")(tmp_path / "outreach.db")
    else:
        url, drop = _fresh_pg(request.getfixturevalue("pg_template"))
        yield url
        drop()


@pytest.fixture
def sqlite_url(tmp_path, migrated_sqlite) -> str:
    return migrated_sqlite(tmp_path / "outreach.db")


@pytest.fixture
def pg_url(pg_template) -> str:
    url, drop = _fresh_pg(pg_template)
    yield url
    drop()


@pytest.fixture
def engine(db_url):
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def prefect_server():
    """The one Prefect test server of the session (a temporary SQLite database); every test that
    runs flows for real asks for this fixture, never a harness of its own."""
    from prefect.testing.utilities import prefect_test_harness

    # as generous as prefect.toml's: on a loaded 2-core machine the server took over 60 s to start
    with prefect_test_harness(server_startup_timeout=180):
        yield


def pytest_collection_modifyitems(config, items) -> None:
    """Whole files, longest first (the integration cluster, then files with slow tests), so that on
    xdist workers the short files fill the time at the end instead of one long file running alone.
    Within a file the order stays as written."""
    rank: dict[Path, int] = {}
    for item in items:
        kind = 0 if item.get_closest_marker("integration") else 1 if item.get_closest_marker("slow") else 2
        rank[item.path] = min(kind, rank.get(item.path, 2))
    items.sort(key=lambda item: rank[item.path])
