"""Clients of the consent API: keys, scopes, rotation and revocation.

A key reads ``ock_<key id>_<secret>``. The key id finds the client; only SHA-256 of the secret is
stored. A slow password hash (argon2) protects guessable secrets; these are 256 random bits, which
no one guesses or inverts from a SHA-256, and argon2 would cost ~50 ms of CPU on every request
(the API must take hundreds of changes a second). The secret is compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from outreach.errors import InputError
from outreach.models import ApiClient

PREFIX = "ock"
SCOPES = ("consent:read", "consent:write")
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
RATE = re.compile(r"^\d{1,6}/(second|minute|hour)$")


class ApiClientError(InputError):
    """A bad name, scope or rate, or an unknown client (the message names which)."""


@dataclass(frozen=True)
class Caller:
    """An authenticated client, as route handlers see it."""

    id: int
    name: str
    scopes: frozenset[str]
    rate_limit: str | None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _new_key(client: ApiClient) -> str:
    client.key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    client.secret_sha256 = _digest(secret)
    return f"{PREFIX}_{client.key_id}_{secret}"


def _check_scopes(scopes: list[str]) -> str:
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        raise ApiClientError(f"scopes {unknown or '(none)'}: use one or more of {', '.join(SCOPES)}")
    return " ".join(sorted(set(scopes)))


def create(
    session: Session, name: str, scopes: list[str], rate_limit: str | None = None, now: datetime | None = None
) -> str:
    """A new client; returns its key, which is shown once and stored nowhere."""
    if not NAME.match(name):
        raise ApiClientError(f"client name {name!r}: lower-case letters, digits, '.', '_' or '-', at most 64")
    if rate_limit is not None and not RATE.match(rate_limit):
        raise ApiClientError(f"rate limit {rate_limit!r}: write N/second, N/minute or N/hour")
    if session.scalar(select(ApiClient.id).where(ApiClient.name == name)) is not None:
        raise ApiClientError(f"a client named {name!r} exists already (rotate its key instead)")
    client = ApiClient(
        name=name, scopes=_check_scopes(scopes), rate_limit=rate_limit, created_at=now or datetime.now(UTC)
    )
    key = _new_key(client)
    session.add(client)
    session.flush()
    return key


def _named(session: Session, name: str) -> ApiClient:
    client = session.scalar(select(ApiClient).where(ApiClient.name == name))
    if client is None:
        raise ApiClientError(f"no API client named {name!r}")
    return client


def rotate(session: Session, name: str, now: datetime | None = None) -> str:
    """A new key for the client; the old one stops working at once."""
    client = _named(session, name)
    if client.revoked_at is not None:
        raise ApiClientError(f"client {name!r} is revoked: create a new client")
    key = _new_key(client)
    client.rotated_at = now or datetime.now(UTC)
    return key


def revoke(session: Session, name: str, now: datetime | None = None) -> None:
    client = _named(session, name)
    client.revoked_at = client.revoked_at or now or datetime.now(UTC)


def listing(session: Session) -> list[ApiClient]:
    return list(session.scalars(select(ApiClient).order_by(ApiClient.name)))


def authenticate(session: Session, key: str) -> Caller | None:
    """The client a key belongs to, or None (malformed, unknown, wrong secret or revoked)."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or len(parts[1]) != 16:
        return None
    client = session.scalar(select(ApiClient).where(ApiClient.key_id == parts[1]))
    if client is None or client.revoked_at is not None:
        return None
    if not hmac.compare_digest(client.secret_sha256, _digest(parts[2])):
        return None
    return Caller(client.id, client.name, frozenset(client.scopes.split()), client.rate_limit)
