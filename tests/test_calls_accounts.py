"""Agents and teams: argon2 password hashes, sign-in, the CLI that creates them."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from outreach.calls import accounts
from outreach.calls.models import Agent
from outreach.db import make_engine, session_scope
from tests.calls_support import cheap_hashing  # noqa: F401 (a fixture)


@pytest.fixture
def db(sqlite_url):
    engine = make_engine(sqlite_url)
    with session_scope(engine) as session:
        accounts.add_team(session, "nl-1", 40, "nl")
    yield engine
    engine.dispose()


def test_passwords_are_stored_as_argon2id_and_checked(db):
    """At the library's real (RFC 9106) cost: the other tests use a cheap setting for speed."""
    with session_scope(db) as session:
        agent = accounts.add_agent(session, "Jan", "correct horse battery", "nl-1", display_name="Jan Jansen")
        assert agent.username == "jan"
        assert agent.password_hash.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
        assert "correct horse" not in agent.password_hash
    with session_scope(db) as session:
        assert accounts.authenticate(session, "JAN", "correct horse battery").display_name == "Jan Jansen"
        assert accounts.authenticate(session, "jan", "wrong password!") is None
        assert accounts.authenticate(session, "nobody", "correct horse battery") is None


@pytest.mark.usefixtures("cheap_hashing")
def test_inactive_agents_cannot_sign_in_and_sign_out_rotates_the_nonce(db):
    with session_scope(db) as session:
        agent = accounts.add_agent(session, "jan", "correct horse battery", "nl-1")
        before = agent.session_nonce
        accounts.end_sessions(session, agent.id)
        assert agent.session_nonce != before
        agent.active = False
    with session_scope(db) as session:
        assert accounts.authenticate(session, "jan", "correct horse battery") is None


@pytest.mark.usefixtures("cheap_hashing")
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"username": "jan", "password": "short"}, "at least 10"),
        ({"username": "j a n", "password": "long enough pw"}, "use letters"),
        ({"username": "jan", "password": "long enough pw", "team": "xx"}, "no team named"),
        ({"username": "jan", "password": "long enough pw", "role": "boss"}, "role must be"),
    ],
)
def test_bad_agents_are_refused_with_a_reason(db, kwargs, message):
    args = {"team": "nl-1", **kwargs}
    with session_scope(db) as session, pytest.raises(accounts.AccountError, match=message):
        accounts.add_agent(session, args.pop("username"), args.pop("password"), args.pop("team"), **args)


@pytest.mark.usefixtures("cheap_hashing")
def test_team_rules(db):
    with session_scope(db) as session:
        with pytest.raises(accounts.AccountError, match="exists already"):
            accounts.add_team(session, "nl-1", 10, "nl")
        with pytest.raises(accounts.AccountError, match="language"):
            accounts.add_team(session, "de-1", 10, "de")
        assert accounts.set_capacity(session, "nl-1", 25).calls_per_day == 25


@pytest.mark.usefixtures("cheap_hashing")
def test_cli_adds_teams_and_agents_with_password_from_stdin(sqlite_url, monkeypatch):
    from outreach.cli import app
    from outreach.config import get_settings

    monkeypatch.setenv("OUTREACH_DATABASE_URL", sqlite_url)
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        result = runner.invoke(app, ["teams", "add", "nl-1", "--calls-per-day", "40", "--language", "nl"])
        assert result.exit_code == 0, result.output
        result = runner.invoke(
            app,
            ["agents", "add", "sup", "--team", "nl-1", "--supervisor", "--password-stdin"],
            input="a long supervisor password\n",
        )
        assert result.exit_code == 0, result.output
        result = runner.invoke(
            app, ["agents", "add", "jan", "--team", "nl-1"], input="pw pw pw pw 1\npw pw pw pw 1\n"
        )
        assert result.exit_code == 0, result.output  # prompted twice (confirmation)
        again = runner.invoke(app, ["teams", "add", "nl-1", "--calls-per-day", "4"])
        assert again.exit_code == 2 and "exists already" in again.output
        engine = make_engine(sqlite_url)
        with session_scope(engine) as session:
            roles = dict(session.execute(select(Agent.username, Agent.role)).all())
            assert accounts.authenticate(session, "sup", "a long supervisor password") is not None
        engine.dispose()
        assert roles == {"sup": "supervisor", "jan": "agent"}
        listing = runner.invoke(app, ["agents", "list"])
        assert "supervisor" in listing.output and "a long supervisor password" not in listing.output
    finally:
        get_settings.cache_clear()


@pytest.mark.usefixtures("cheap_hashing")
def test_repeated_wrong_passwords_lock_the_account_for_a_while(db):
    from datetime import UTC, datetime

    start = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    with session_scope(db) as session:
        accounts.add_agent(session, "jan", "correct horse battery", "nl-1")
    with session_scope(db) as session:
        for _ in range(accounts.MAX_FAILED_LOGINS - 1):
            assert accounts.authenticate(session, "jan", "wrong password!", now=start) is None
        # a right password before the limit resets the count
        assert accounts.authenticate(session, "jan", "correct horse battery", now=start) is not None
        for _ in range(accounts.MAX_FAILED_LOGINS):
            assert accounts.authenticate(session, "jan", "wrong password!", now=start) is None
        agent = session.scalar(select(Agent).where(Agent.username == "jan"))
        assert accounts.lock_ends(agent, start) == start + accounts.LOCKOUT
        # locked: even the right password is refused, until the lock runs out
        almost = start + accounts.LOCKOUT - accounts.LOCKOUT / 10
        assert accounts.authenticate(session, "jan", "correct horse battery", now=almost) is None
        after = start + accounts.LOCKOUT
        assert accounts.authenticate(session, "jan", "correct horse battery", now=after) is not None
        assert accounts.lock_ends(agent, after) is None and agent.failed_logins == 0


@pytest.mark.usefixtures("cheap_hashing")
def test_cli_lists_a_locked_agent_and_unlocks_it(sqlite_url, monkeypatch):
    from outreach.cli import app
    from outreach.config import get_settings

    engine = make_engine(sqlite_url)
    with session_scope(engine) as session:
        accounts.add_team(session, "nl-1", 40, "nl")
        accounts.add_agent(session, "jan", "correct horse battery", "nl-1")
    with session_scope(engine) as session:
        for _ in range(accounts.MAX_FAILED_LOGINS):
            accounts.authenticate(session, "jan", "wrong password!")
    monkeypatch.setenv("OUTREACH_DATABASE_URL", sqlite_url)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        assert " UTC" in runner.invoke(app, ["agents", "list"]).output  # locked until …
        result = runner.invoke(app, ["agents", "unlock", "JAN"])
        assert result.exit_code == 0, result.output
        assert " UTC" not in runner.invoke(app, ["agents", "list"]).output
        assert runner.invoke(app, ["agents", "unlock", "nobody"]).exit_code == 2
    finally:
        get_settings.cache_clear()
    with session_scope(engine) as session:
        assert accounts.authenticate(session, "jan", "correct horse battery") is not None
    engine.dispose()
