"""Prefect flow ``live-offers``: the live lane as a long-running deployment an operator starts,
watches and cancels from the UI (docs/realtime.md).

Thin: the work is ``outreach.live`` (consume, decide, commit, acknowledge, send). Every
``report_seconds`` the flow updates a table artifact ``live-offers`` (throughput, lag, decisions,
dead letters) and emits the Prefect event ``outreach.live.progress`` with the same counts — counts
only, never a customer. On cancellation (SIGTERM) the batch in hand is finished and acknowledged;
a harder stop is safe too (acknowledgements follow the commit), and the next run resumes from the
consumer group's position on the broker.
"""

from __future__ import annotations

import asyncio

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_table_artifact
from prefect.events import emit_event

from outreach.config import get_settings
from outreach.live.consumer import LiveStats
from outreach.live.jetstream import StreamNames
from outreach.live.runner import open_consumer, run_until_stopped


def _row(stats: LiveStats) -> dict:
    row = stats.as_dict()
    for key in ("decisions", "skipped", "dead_lettered"):
        row[key] = ", ".join(f"{k} {v}" for k, v in sorted(row[key].items())) or "-"
    return row


@flow(name="live-offers", log_prints=False)
async def live_offers(
    url: str | None = None,
    stream: str = "PAYMENTS",
    subject: str = "bank.payments",
    durable: str = "outreach-live",
    batch_events: int = 500,
    batch_ms: int = 200,
    report_seconds: float = 60.0,
    max_seconds: float | None = None,
) -> dict:
    logger = get_run_logger()
    settings = get_settings()
    consumer = await open_consumer(
        settings,
        url or settings.nats_url,
        StreamNames(stream, subject, durable),
        batch_events=batch_events,
        batch_seconds=batch_ms / 1000,
    )
    pending: set[asyncio.Task] = set()

    def report(stats: LiveStats) -> None:
        logger.info("live: %s", stats.line())
        emit_event(
            event="outreach.live.progress",
            resource={"prefect.resource.id": f"outreach.live.{durable}"},
            payload=stats.as_dict(),
        )
        task = asyncio.get_running_loop().create_task(
            acreate_table_artifact(
                [_row(stats)],
                key="live-offers",
                description="Live lane: events, decisions, sends, dead letters and lag so far (counts only)",
            )
        )
        pending.add(task)
        task.add_done_callback(pending.discard)

    stats = await run_until_stopped(
        consumer, max_seconds=max_seconds, report=report, report_every=report_seconds
    )
    await asyncio.gather(*pending)
    return stats.as_dict()
