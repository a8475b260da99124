"""What route handlers share: the settings and one database engine per app."""

from __future__ import annotations

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
