"""What route handlers share: the settings and one database engine per app."""

from __future__ import annotations

import uuid

from sqlalchemy import Engine
from starlette.requests import Request

from outreach.config import Settings
from outreach.db import make_engine


def settings_of(request: Request) -> Settings:
    return request.app.state.settings


def engine_of(request: Request) -> Engine:
    """The app's engine, made on first use (the app may be built before the database exists)."""
    state = request.app.state
    if getattr(state, "engine", None) is None:
        state.engine = make_engine(state.settings.database_url)
    return state.engine


def request_id_of(request: Request) -> str:
    """The caller's X-Request-ID (a proxy's or the bank's), else a new one: stored with consent changes."""
    given = request.headers.get("x-request-id", "")
    if given and len(given) <= 64 and given.isprintable():
        return given
    return uuid.uuid4().hex
