"""The call centre's settings: the ``calls`` branch of the one settings tree (outreach.config)."""

from __future__ import annotations

from outreach.config import CallSettings, get_settings


def get_call_settings() -> CallSettings:
    return get_settings().calls


__all__ = ["CallSettings", "get_call_settings"]
