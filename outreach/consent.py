"""The consent registry: an append-only event history; the latest event per scope wins.

Every change passes through :func:`record` (an audit log hooks in there); each names its actor.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from outreach import audit
from outreach.db import as_utc
from outreach.errors import InputError
from outreach.models import ConsentEvent

CHANNEL_SCOPES = ("sms", "email", "letter", "phone")
CHOICES = ("opt_out", "opt_in")


ACTOR_KINDS = ("api_client", "agent", "customer", "inbound_mail", "import", "cli", "provider", "system")


class ConsentError(InputError):
    pass


@dataclass(frozen=True)
class Actor:
    """Who changed a customer's consent: ``kind`` (one of ACTOR_KINDS) and ``name`` (the API client,
    the agent's user name, the page, ``file.csv:row``), with the request that carried it if any."""

    kind: str
    name: str
    request_id: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ACTOR_KINDS:
            raise ConsentError(f"unknown actor kind {self.kind!r}: use one of {', '.join(ACTOR_KINDS)}")


def check_scope(scope: str) -> str:
    if scope == "all" or scope in CHANNEL_SCOPES:
        return scope
    if scope.startswith("topic:") and len(scope) > len("topic:"):
        return scope
    raise ConsentError(f"unknown consent scope {scope!r}: use all, sms, email, letter, phone or topic:<name>")


def record(
    session: Session,
    customer_id: str,
    scope: str,
    choice: str,
    source: str,
    at: datetime | None = None,
    actor: Actor | None = None,
) -> ConsentEvent:
    """Append one consent change and its audit entry, in the caller's transaction: the one door
    every change goes through."""
    if choice not in CHOICES:
        raise ConsentError(f"unknown consent choice {choice!r}: use opt_out or opt_in")
    event = ConsentEvent(
        customer_id=customer_id,
        scope=check_scope(scope),
        choice=choice,
        source=source[:64],
        recorded_at=at or datetime.now(UTC),
        actor_kind=actor.kind if actor else None,
        actor=actor.name[:128] if actor else None,
        request_id=actor.request_id[:64] if actor and actor.request_id else None,
    )
    session.add(event)
    session.flush()  # the insert takes the write lock first (SQLite), then the audit log's
    audit.append(
        session,
        "consent.changed",
        {"scope": event.scope, "choice": choice, "source": source},
        actor=f"{actor.kind}:{actor.name}" if actor else f"source:{source}",
        customer_id=customer_id,
        at=event.recorded_at,
    )
    return event


@dataclass(frozen=True)
class ConsentState:
    customer_id: str
    choices: dict[str, str]  # scope -> latest choice

    def allows(self, scope: str, *, default_in: bool = True) -> bool:
        """A global opt-out beats any channel opt-in; otherwise the scope's latest event decides."""
        if self.choices.get("all") == "opt_out":
            return False
        choice = self.choices.get(scope)
        return default_in if choice is None else choice == "opt_in"


def latest_choice_query(customer_id: str, scope: str) -> Select:
    return (
        select(ConsentEvent.choice)
        .where(ConsentEvent.customer_id == customer_id, ConsentEvent.scope == scope)
        .order_by(ConsentEvent.recorded_at.desc(), ConsentEvent.id.desc())
        .limit(1)
    )


def latest_choice(session: Session, customer_id: str, scope: str) -> str | None:
    """The latest choice in one scope (None: never recorded), without reading the whole history."""
    return session.scalar(latest_choice_query(customer_id, scope))


def history(session: Session, customer_id: str) -> list[ConsentEvent]:
    stmt = (
        select(ConsentEvent)
        .where(ConsentEvent.customer_id == customer_id)
        .order_by(ConsentEvent.recorded_at, ConsentEvent.id)
    )
    return list(session.scalars(stmt))


def current(session: Session, customer_id: str, as_of: datetime | None = None) -> ConsentState:
    choices: dict[str, str] = {}
    for event in history(session, customer_id):
        if as_of is None or as_utc(event.recorded_at) <= as_of:
            choices[event.scope] = event.choice
    return ConsentState(customer_id, choices)


def latest_opted_out(session: Session, customer_ids: list[str], scopes: set[str]) -> set[str]:
    """Customers among ``customer_ids`` whose latest event in any of ``scopes`` is an opt-out."""
    if not customer_ids:
        return set()
    ranked = (
        select(
            ConsentEvent.customer_id,
            ConsentEvent.choice,
            func.row_number()
            .over(
                partition_by=(ConsentEvent.customer_id, ConsentEvent.scope),
                order_by=(ConsentEvent.recorded_at.desc(), ConsentEvent.id.desc()),
            )
            .label("rank"),
        )
        .where(ConsentEvent.customer_id.in_(customer_ids), ConsentEvent.scope.in_(scopes))
        .subquery()
    )
    stmt = select(ranked.c.customer_id).where(ranked.c.rank == 1, ranked.c.choice == "opt_out")
    return set(session.scalars(stmt))
