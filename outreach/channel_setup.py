"""Open the configured adapter for a channel with the options our settings hold for its backend.

Adapters take explicit keyword arguments and read no environment: the settings tree
(outreach.config) is the one place configuration comes from.
"""

from __future__ import annotations

from channels import load_channel
from channels.base import Channel
from outreach.config import Settings


def channel_options(settings: Settings, kind: str, backend: str) -> dict[str, object]:
    """The keyword arguments of ``backend``'s adapter for ``kind``, from the settings."""
    if backend == "twilio":
        return settings.twilio.adapter_options()
    if backend == "sendgrid":
        return settings.sendgrid.adapter_options()
    if backend == "outbox":
        options: dict[str, object] = {"outbox_dir": settings.outbox_dir}
        if kind == "letter":
            options["window_mm"] = settings.letter_window_mm
        return options
    return {}  # a plug-in backend configures itself


def open_channel(settings: Settings, kind: str) -> Channel:
    backend = settings.backend_for(kind)
    return load_channel(kind, backend, **channel_options(settings, kind, backend))
