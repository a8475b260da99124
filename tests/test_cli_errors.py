"""What the command line says when the user got something wrong or the machine is not ready
(issue 13 §2 and §4.7): one line, a non-zero exit, never a traceback."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import tomllib
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError
from typer.testing import CliRunner

from outreach.cli import app
from outreach.cli.errors import explain
from outreach.config import ConfigError, get_settings, load_offers
from tests.fixture_files import OFFERS_FILE

REPO = Path(__file__).resolve().parent.parent
DAY = date(2026, 11, 18)
OUTREACH = str(Path(sys.executable).parent / "outreach")


@pytest.fixture
def env(tmp_path, monkeypatch):
    """Settings of a checkout in tmp_path (SQLite there, the repository's offers and templates)."""
    monkeypatch.setenv("OUTREACH_DATABASE_URL", f"sqlite:///{tmp_path / 'outreach.db'}")
    monkeypatch.setenv("OUTREACH_OFFERS_FILE", str(OFFERS_FILE))
    monkeypatch.setenv("OUTREACH_TEMPLATES_DIR", str(REPO / "templates"))
    monkeypatch.setenv("OUTREACH_OUTBOX_DIR", str(tmp_path / "outbox"))
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def _one_line_failure(result, code: int) -> str:
    assert result.exit_code == code, (result.output, result.exception)
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output
    return lines[0]


DATED_COMMANDS = [
    ["run", "--date"],
    ["preview", "--date"],
    ["explain", "C1", "--date"],
    ["status", "--date"],
    ["candidates", "--date"],
    ["export", "decisions", "--format", "csv", "--date"],
    ["calls", "create", "--date"],
    ["campaigns", "list", "--date"],
    ["generate", "--out", "x", "--as-of"],
]


@pytest.mark.parametrize("bad", ["04-12-2026", "2026-13-01", "20261204", "tomorrow"])
@pytest.mark.parametrize("command", DATED_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_every_command_refuses_a_bad_day_in_one_line_with_exit_2(env, command, bad):
    result = CliRunner().invoke(app, [*command, bad])
    line = _one_line_failure(result, 2)
    assert f"'{bad}' is not a date" in line and "YYYY-MM-DD" in line or "month must be" in line, line
    assert line.startswith("error: outreach " + command[0])


def test_preview_refuses_a_bad_time_in_one_line(env):
    line = _one_line_failure(CliRunner().invoke(app, ["preview", "--date", "2026-11-18", "--at", "9:30"]), 2)
    assert "'9:30' is not a time" in line


def test_explain_of_an_unknown_customer_fails_with_a_message(env):
    from outreach.db import upgrade

    upgrade(get_settings().database_url)
    result = CliRunner().invoke(app, ["explain", "C9999999", "--date", DAY.isoformat()])
    line = _one_line_failure(result, 1)
    assert "no customer 'C9999999'" in line


def test_a_yaml_syntax_error_names_the_file_and_the_line(tmp_path, env, monkeypatch):
    offers = tmp_path / "offers.yaml"
    offers.write_text("policy:\n  default_timezone: Europe/Amsterdam\noffers: [\n  - code: X\n    bad: : :\n")
    with pytest.raises(ConfigError) as caught:
        load_offers(offers)
    message = str(caught.value)
    assert "<unicode string>" not in message and "\n" not in message
    assert message.startswith(f"{offers}, line ")
    monkeypatch.setenv("OUTREACH_OFFERS_FILE", str(offers))
    get_settings.cache_clear()
    line = _one_line_failure(CliRunner().invoke(app, ["preview", "--date", DAY.isoformat()]), 2)
    assert line == f"error: {message}"


def test_an_unreachable_database_is_one_line(env, monkeypatch):
    monkeypatch.setenv("OUTREACH_DATABASE_URL", "postgresql+psycopg://outreach:s3cret@127.0.0.1:1/nowhere")
    get_settings.cache_clear()
    line = _one_line_failure(CliRunner().invoke(app, ["status", "--date", DAY.isoformat()]), 1)
    assert line.startswith("error: cannot reach the database postgresql+psycopg://outreach:***@127.0.0.1:1/")
    assert "s3cret" not in line and "OUTREACH_DATABASE_URL" in line


def test_a_locked_sqlite_database_and_a_missing_schema_are_explained(env):
    locked = OperationalError("INSERT ...", {}, sqlite3.OperationalError("database is locked"))
    message, code = explain(locked)
    assert code == 1 and "is locked by another process" in message
    missing = OperationalError("SELECT ...", {}, sqlite3.OperationalError("no such table: messages"))
    assert "run `outreach db upgrade`" in explain(missing)[0]
    assert explain(OperationalError("SELECT 1", {}, sqlite3.OperationalError("disk I/O error"))) is None
    assert explain(KeyError("a bug")) is None  # bugs keep their traceback


def test_a_bug_still_shows_its_traceback(env, monkeypatch):
    import outreach.cli.status as status_cli

    def broken(*_args, **_kwargs):
        raise KeyError("a bug")

    monkeypatch.setattr(status_cli, "lifecycle", broken)
    result = CliRunner().invoke(app, ["status", "--date", DAY.isoformat()])
    assert isinstance(result.exception, KeyError)


def _subprocess_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "OUTREACH_"))}
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect"),
        OUTREACH_DATABASE_URL=f"sqlite:///{tmp_path / 'outreach.db'}",
        OUTREACH_OFFERS_FILE=str(OFFERS_FILE),
        OUTREACH_TEMPLATES_DIR=str(REPO / "templates"),
        OUTREACH_OUTBOX_DIR=str(tmp_path / "outbox"),
        **extra,
    )
    return env


@pytest.mark.prefect
def test_an_embedded_prefect_server_that_does_not_start_is_one_line(tmp_path):
    # a start-up timeout of 0 s: the embedded server cannot be up in time, on any machine
    env = _subprocess_env(tmp_path, PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="0")
    done = subprocess.run(
        [OUTREACH, "run", "--date", DAY.isoformat()], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith("error: Prefect's embedded server did not start in time")
    ), done.stderr
    assert "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS" in done.stderr


@pytest.mark.prefect
def test_a_prefect_server_that_is_not_up_is_one_line(tmp_path):
    env = _subprocess_env(tmp_path, PREFECT_API_URL="http://127.0.0.1:1/api")
    done = subprocess.run(
        [OUTREACH, "run", "--date", DAY.isoformat()], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert "error: cannot reach http://127.0.0.1:1/api" in done.stderr, done.stderr


PRINT_TIMEOUT = (
    "import flows; from prefect.settings import get_current_settings; "
    "print(get_current_settings().server.ephemeral.startup_timeout_seconds)"
)


@pytest.mark.parametrize("where", ["repository root", "elsewhere"])
def test_the_projects_prefect_start_up_timeout_holds_from_any_directory(tmp_path, where):
    wanted = tomllib.loads((REPO / "prefect.toml").read_text())["server"]["ephemeral"]
    assert wanted["startup_timeout_seconds"] > 20  # more than Prefect's default
    cwd = REPO if where == "repository root" else tmp_path
    env = _subprocess_env(tmp_path, PYTHONPATH=str(REPO))
    done = subprocess.run(
        [sys.executable, "-c", PRINT_TIMEOUT], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert done.stdout.strip() == str(wanted["startup_timeout_seconds"]), done.stderr
    env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "7"  # the environment still wins
    done = subprocess.run(
        [sys.executable, "-c", PRINT_TIMEOUT], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert done.stdout.strip() == "7", done.stderr
