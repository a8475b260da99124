"""Wire the live lane from settings: the CLI (`outreach live`), the Prefect flow and the tests use this."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from datetime import datetime

from channels.base import Channel
from outreach.channel_setup import open_channel
from outreach.config import Settings, load_offers
from outreach.db import engine_for
from outreach.live.consumer import LiveConsumer, LiveStats
from outreach.live.decide import LiveDecider
from outreach.live.jetstream import JetStreamSource, StreamNames
from outreach.live.send import LIVE_CHANNELS, LiveSender
from outreach.triggers import triggers_for


def live_channels(settings: Settings) -> dict[str, Channel]:
    return {kind: open_channel(settings, kind) for kind in LIVE_CHANNELS}


async def open_consumer(
    settings: Settings,
    url: str,
    names: StreamNames,
    *,
    channels: dict[str, Channel] | None = None,
    clock: Callable[[], datetime] | None = None,
    batch_events: int = 500,
    batch_seconds: float = 0.2,
    ack_wait: float = 30.0,
) -> LiveConsumer:
    offers = load_offers(settings.offers_file)
    triggers = triggers_for(settings.offers_file, set(offers.by_code()))
    engine = engine_for(settings.database_url)
    source = await JetStreamSource.open(url, names, ack_wait=ack_wait)
    sender = LiveSender(engine, settings, offers, channels or live_channels(settings), clock=clock)
    return LiveConsumer(
        source,
        LiveDecider(engine, offers, triggers),
        sender,
        batch_events=batch_events,
        batch_seconds=batch_seconds,
        clock=clock,
    )


async def run_until_stopped(
    consumer: LiveConsumer,
    *,
    max_seconds: float | None = None,
    report: Callable[[LiveStats], None] | None = None,
    report_every: float = 1.0,
) -> LiveStats:
    """Run until SIGINT/SIGTERM (or ``max_seconds``): the batch in hand is finished, then the
    connection is drained. ``report`` is called at most every ``report_every`` seconds."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
            loop.add_signal_handler(sig, stop.set)
    if max_seconds:
        loop.call_later(max_seconds, stop.set)
    last = 0.0

    def on_batch(stats: LiveStats) -> None:
        nonlocal last
        if report and loop.time() - last >= report_every:
            last = loop.time()
            report(stats)

    try:
        stats = await consumer.run(stop, on_batch)
    finally:
        await consumer.source.close()
    if report:
        report(stats)
    return stats
