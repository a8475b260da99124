"""`outreach live` (the live lane in the foreground) and `outreach events replay` (the bank's side:
publish the synthetic bank's transactions as payment events). docs/realtime.md."""

from __future__ import annotations

import asyncio

import typer
from rich.console import Console

from channels.errors import ConfigurationError
from outreach.cli import app
from outreach.config import ConfigError, get_settings
from outreach.db import engine_for
from outreach.live.jetstream import BrokerUnavailable, JetStreamSink, StreamNames
from outreach.live.replay import replay, transaction_events

out = Console()
err = Console(stderr=True)
events_app = typer.Typer(help="Payment events on the broker: publish the synthetic bank's transactions.")
app.add_typer(events_app, name="events")

URL = typer.Option(None, "--url", help="NATS server with JetStream (default: OUTREACH_NATS_URL).")
STREAM = typer.Option("PAYMENTS", "--stream", envvar="OUTREACH_LIVE_STREAM", help="JetStream stream name.")
SUBJECT = typer.Option(
    "bank.payments", "--subject", envvar="OUTREACH_LIVE_SUBJECT", help="Subject of the payment events."
)


def _broker_down(exc: Exception) -> typer.Exit:
    err.print(f"[red]--url {exc}[/red]")
    return typer.Exit(2)


@events_app.command("replay")
def events_replay(
    rate: float = typer.Option(200.0, "--rate", min=0.0, help="Events per second (0: as fast as possible)."),
    limit: int = typer.Option(0, "--limit", min=0, help="Publish at most this many transactions (0: all)."),
    keep_time: bool = typer.Option(
        False, "--keep-time", help="Keep the booking times (default: stamp each event with now)."
    ),
    url: str | None = URL,
    stream: str = STREAM,
    subject: str = SUBJECT,
) -> None:
    """Publish the bank's transactions, oldest first, as payment events at --rate per second."""
    settings = get_settings()
    engine = engine_for(settings.database_url)
    url = url or settings.nats_url

    async def go():
        try:
            sink = await JetStreamSink.open(url, StreamNames(stream, subject))
        except BrokerUnavailable as exc:
            raise _broker_down(exc) from exc
        try:
            with err.status("publishing") as status:
                return await replay(
                    sink,
                    transaction_events(engine, limit or None),
                    rate,
                    keep_time=keep_time,
                    on_progress=lambda n: status.update(f"{n} events published"),
                )
        finally:
            await sink.close()

    report = asyncio.run(go())
    out.print(
        f"{report.published} events published to {subject} in {report.seconds:.1f} s ({report.rate:.0f}/s)"
    )


@app.command("live")
def live(
    url: str | None = URL,
    stream: str = STREAM,
    subject: str = SUBJECT,
    durable: str = typer.Option(
        "outreach-live",
        "--durable",
        envvar="OUTREACH_LIVE_DURABLE",
        help="Consumer group: processes with the same name share the stream.",
    ),
    batch_events: int = typer.Option(
        500, "--batch-events", min=1, help="Close a micro-batch at this many events."
    ),
    batch_ms: int = typer.Option(200, "--batch-ms", min=10, help="... or this long after its first event."),
    max_seconds: float = typer.Option(
        0, "--max-seconds", min=0, help="Stop after this long (0: until Ctrl-C)."
    ),
) -> None:
    """Consume payment events and act on them now: decide with the contact policy, send, record."""
    from outreach.live.runner import open_consumer, run_until_stopped

    settings = get_settings()
    url = url or settings.nats_url

    async def go():
        try:
            consumer = await open_consumer(
                settings,
                url,
                StreamNames(stream, subject, durable),
                batch_events=batch_events,
                batch_seconds=batch_ms / 1000,
            )
        except BrokerUnavailable as exc:
            raise _broker_down(exc) from exc
        with err.status("live: waiting for events") as status:
            return await run_until_stopped(
                consumer, max_seconds=max_seconds or None, report=lambda s: status.update(f"live: {s.line()}")
            )

    try:
        stats = asyncio.run(go())
    except (ConfigError, ConfigurationError) as exc:  # the offers/triggers files, a channel's settings
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    out.print(f"live: {stats.line()}")
