"""Hand the live lane's planned messages to the channels through the daily lane's dispatcher.

Only the instant channels go out live (SMS, email); a live letter or call waits in the ledger for
the daily print batch and call list, like any other planned message.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from datetime import datetime

from channels.base import Channel
from outreach import ledger
from outreach.config import OffersFile, Settings
from outreach.db import session_scope
from outreach.dispatch import Dispatcher, DispatchReport
from outreach.live.decide import EXPIRED

LIVE_CHANNELS = ("sms", "email")


class LiveSender:
    def __init__(
        self,
        engine,
        settings: Settings,
        offers: OffersFile,
        channels: dict[str, Channel],
        worker: str | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.engine = engine
        worker = worker or settings.worker_name or f"live@{socket.gethostname()}"
        self.dispatchers = {
            kind: Dispatcher(engine, settings, offers, channel, worker, clock=clock)
            for kind, channel in channels.items()
            if kind in LIVE_CHANNELS
        }

    def send(self, to_send: dict[str, list[int]]) -> DispatchReport:
        report = DispatchReport()
        for channel, ids in to_send.items():
            dispatcher = self.dispatchers.get(channel)
            if dispatcher is not None and ids:
                report.add(dispatcher.send_ids(ids))
        return report

    def expire(self, ids: list[int]) -> int:
        """Planned live messages whose event's relevance window has passed: cancelled, never sent."""
        with session_scope(self.engine) as session:
            return ledger.transition(
                session,
                ids,
                "cancelled",
                expected="planned",
                detail="the event's relevance window passed before sending",
                last_error_code=EXPIRED,
            )
