"""Shared fixtures: a migrated database on SQLite and on this machine's PostgreSQL."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from outreach.db import make_engine, upgrade
from tests.clock import clock  # noqa: F401 (the suite's one clock, a fixture)
from tests.fixture_files import CAMPAIGNS_DIR, OFFERS_FILE

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# The suite runs at any hour, so the send-time quiet-hours re-check is off for tests that are
# about something else (worker processes inherit this); tests/test_dispatch_windows.py checks it
# with a fixed clock. Decision-time quiet hours stay in force everywhere.
os.environ.setdefault("OUTREACH_SEND_WINDOW_CHECK", "false")
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
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _fresh_pg(template: str) -> tuple[str, callable]:
    name = f"outreach_t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}", drop


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path) -> str:
    """A freshly migrated database URL, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'outreach.db'}"
        upgrade(url)
        yield url
    else:
        url, drop = _fresh_pg(request.getfixturevalue("pg_template"))
        yield url
        drop()


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'outreach.db'}"
    upgrade(url)
    return url


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

    with prefect_test_harness(server_startup_timeout=60):
        yield
