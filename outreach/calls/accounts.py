"""Teams and agents: creation, password hashing (argon2id via argon2-cffi) and sign-in."""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import case, or_, select, update
from sqlalchemy.orm import Session

from outreach.calls.models import ROLES, Agent, Team
from outreach.db import as_utc
from outreach.errors import InputError

# argon2id with the library's RFC 9106 defaults; tests swap in cheaper parameters
HASHER = PasswordHasher()
MIN_PASSWORD = 10
MAX_FAILED_LOGINS = 5  # wrong passwords in a row before the account locks
LOCKOUT = timedelta(minutes=15)
log = logging.getLogger(__name__)


class AccountError(InputError):
    pass


def add_team(session: Session, name: str, calls_per_day: int, language: str | None = None) -> Team:
    name = name.strip()
    if not name:
        raise AccountError("a team needs a name")
    if calls_per_day < 0:
        raise AccountError(f"team {name}: calls per day must be 0 or more, not {calls_per_day}")
    if language is not None and language not in ("nl", "en"):
        raise AccountError(f"team {name}: language must be nl or en (or none for any), not {language!r}")
    if session.scalar(select(Team).where(Team.name == name)):
        raise AccountError(f"team {name} exists already")
    team = Team(name=name, language=language, calls_per_day=calls_per_day, created_at=datetime.now(UTC))
    session.add(team)
    session.flush()
    return team


def set_capacity(session: Session, name: str, calls_per_day: int) -> Team:
    team = team_named(session, name)
    if calls_per_day < 0:
        raise AccountError(f"team {name}: calls per day must be 0 or more, not {calls_per_day}")
    team.calls_per_day = calls_per_day
    return team


def team_named(session: Session, name: str) -> Team:
    team = session.scalar(select(Team).where(Team.name == name))
    if team is None:
        raise AccountError(f"no team named {name!r} (create it with `outreach teams add`)")
    return team


def add_agent(
    session: Session,
    username: str,
    password: str,
    team: str,
    *,
    role: str = "agent",
    display_name: str | None = None,
) -> Agent:
    username = username.strip().lower()
    if not username or not username.replace(".", "").replace("-", "").replace("_", "").isalnum():
        raise AccountError(f"username {username!r}: use letters, digits, '.', '-' or '_'")
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"the password must have at least {MIN_PASSWORD} characters")
    if session.scalar(select(Agent).where(Agent.username == username)):
        raise AccountError(f"agent {username} exists already")
    agent = Agent(
        username=username,
        display_name=(display_name or username).strip(),
        password_hash=HASHER.hash(password),
        team_id=team_named(session, team).id,
        role=role,
        active=True,
        session_nonce=secrets.token_hex(8),
        created_at=datetime.now(UTC),
    )
    session.add(agent)
    session.flush()
    return agent


def authenticate(session: Session, username: str, password: str, now: datetime | None = None) -> Agent | None:
    """The active agent with that username and password, else None (same cost either way).

    ``MAX_FAILED_LOGINS`` wrong passwords in a row lock the account for ``LOCKOUT``: while locked
    even the right password is refused, and the answer looks like any other refusal (no hint for
    someone guessing which accounts exist). A successful sign-in resets the count.

    Each attempt is counted as a failure *before* the password is checked, in one atomic UPDATE that
    is committed at once: parallel guesses cannot all read the same count, so at most
    ``MAX_FAILED_LOGINS`` of them are ever checked against the real hash before the lock holds."""
    now = now or datetime.now(UTC)
    name = username.strip().lower()
    attempt = _count_attempt(session, name, now)
    session.commit()  # the attempt counts even if this sign-in never finishes
    agent = session.get(Agent, attempt) if attempt is not None else None
    try:
        HASHER.verify(agent.password_hash if agent else _dummy_hash(HASHER), password)
    except (VerificationError, InvalidHashError):
        if agent is not None and agent.locked_until is not None:
            log.warning(
                "agent account %s locked for %s after %d wrong passwords",
                agent.id,
                LOCKOUT,
                MAX_FAILED_LOGINS,
            )
        return None
    if agent is None or not agent.active:
        return None
    agent.failed_logins, agent.locked_until = 0, None
    if HASHER.check_needs_rehash(agent.password_hash):
        agent.password_hash = HASHER.hash(password)
    return agent


def _count_attempt(session: Session, username: str, now: datetime) -> int | None:
    """Count one sign-in attempt of an unlocked agent; its id, or None when unknown or locked.

    The attempt that reaches ``MAX_FAILED_LOGINS`` sets the lock in the same statement; a lock that
    has run out starts the count afresh. Works on SQLite (3.35+, RETURNING) and PostgreSQL."""
    expired = Agent.locked_until.is_not(None)  # the WHERE below lets only run-out locks through
    count = case((expired, 1), else_=Agent.failed_logins + 1)
    statement = (
        update(Agent)
        .where(Agent.username == username, or_(Agent.locked_until.is_(None), Agent.locked_until <= now))
        .values(
            failed_logins=count, locked_until=case((count >= MAX_FAILED_LOGINS, now + LOCKOUT), else_=None)
        )
        .returning(Agent.id)
        .execution_options(synchronize_session="fetch")
    )
    return session.scalar(statement)


def unlock(session: Session, username: str) -> Agent:
    """A supervisor's way to lift a lock before it runs out."""
    agent = session.scalar(select(Agent).where(Agent.username == username.strip().lower()))
    if agent is None:
        raise AccountError(f"no agent named {username!r}")
    agent.failed_logins, agent.locked_until = 0, None
    return agent


def lock_ends(agent: Agent, now: datetime | None = None) -> datetime | None:
    """When the agent's lock runs out, or None when the account is not locked."""
    if agent.locked_until is None or as_utc(agent.locked_until) <= (now or datetime.now(UTC)):
        return None
    return as_utc(agent.locked_until)


@lru_cache(maxsize=4)
def _dummy_hash(hasher: PasswordHasher) -> str:
    """Checking an unknown user against this costs as much as a wrong password: no user enumeration."""
    return hasher.hash("no such agent")


def end_sessions(session: Session, agent_id: int) -> None:
    """Sign the agent out everywhere: cookies carry the nonce, so a new one voids them all."""
    agent = session.get(Agent, agent_id)
    if agent is not None:
        agent.session_nonce = secrets.token_hex(8)
