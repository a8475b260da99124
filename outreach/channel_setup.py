"""Open the configured adapter for a channel with the options our settings hold for it."""

from __future__ import annotations

from channels import load_channel
from channels.base import Channel
from outreach.config import Settings


def open_channel(settings: Settings, kind: str) -> Channel:
    return load_channel(
        kind,
        settings.backend_for(kind),
        outbox_dir=settings.outbox_dir,
        window_mm=settings.letter_window_mm,
    )
