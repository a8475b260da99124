"""Teams and agents: creation, password hashing (argon2id via argon2-cffi) and sign-in."""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
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
    someone guessing which accounts exist). A successful sign-in resets the count."""
    now = now or datetime.now(UTC)
    agent = session.scalar(select(Agent).where(Agent.username == username.strip().lower()))
    locked = agent is not None and agent.locked_until is not None and as_utc(agent.locked_until) > now
    try:
        HASHER.verify(agent.password_hash if agent and not locked else _dummy_hash(HASHER), password)
    except (VerificationError, InvalidHashError):
        if agent is not None and not locked:
            _count_failure(agent, now)
        return None
    if agent is None or locked or not agent.active:
        return None
    agent.failed_logins, agent.locked_until = 0, None
    if HASHER.check_needs_rehash(agent.password_hash):
        agent.password_hash = HASHER.hash(password)
    return agent


def _count_failure(agent: Agent, now: datetime) -> None:
    agent.failed_logins = (agent.failed_logins or 0) + 1
    if agent.failed_logins >= MAX_FAILED_LOGINS:
        agent.failed_logins, agent.locked_until = 0, now + LOCKOUT
        log.warning(
            "agent account %s locked for %s after %d wrong passwords", agent.id, LOCKOUT, MAX_FAILED_LOGINS
        )


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
