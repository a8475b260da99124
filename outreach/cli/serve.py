"""``outreach serve``: the web service (provider webhooks, unsubscribe pages) under uvicorn."""

from __future__ import annotations

import os
import shutil
import tempfile

import typer
from rich.console import Console

from outreach.cli import app
from outreach.config import get_settings

console = Console(stderr=True)


def _share_metrics_between_workers() -> str | None:
    """Several processes: prometheus-client's multiprocess mode, so any worker's /metrics shows the
    sum of all. Needs a directory that starts empty: a fresh one (returned, to remove at the end)
    unless the operator names one in PROMETHEUS_MULTIPROC_DIR."""
    made = None
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        made = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="outreach-metrics-")
    console.print(f"metrics of all workers are summed in {os.environ['PROMETHEUS_MULTIPROC_DIR']}")
    return made


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on (0.0.0.0 behind a proxy)."),
    port: int = typer.Option(8000, min=1, max=65535, help="TCP port."),
    log_level: str = typer.Option("info", help="debug, info, warning or error."),
    workers: int = typer.Option(
        1,
        min=1,
        max=64,
        help="Server processes sharing the port (callbacks are CPU- and commit-bound; use with PostgreSQL).",
    ),
) -> None:
    """Serve the webhooks and unsubscribe pages; providers must reach OUTREACH_PUBLIC_URL."""
    metrics_dir = _share_metrics_between_workers() if workers > 1 else None
    import uvicorn

    from outreach.logs import log_config
    from outreach.web.app import create_app

    settings = get_settings()
    missing = [
        name
        for name, value in (
            ("TWILIO_AUTH_TOKEN", settings.twilio.auth_token),
            ("OUTREACH_SENDGRID_WEBHOOK_PUBLIC_KEY", settings.sendgrid.webhook_public_key),
            ("OUTREACH_UNSUBSCRIBE_SECRET", settings.unsubscribe_secret),
        )
        if not value
    ]
    if missing:
        console.print(f"[yellow]not set: {', '.join(missing)}; those routes answer 503[/yellow]")
    console.print(f"public URL (signatures are checked against it): {settings.public_url}")
    options = {
        "host": host,
        "port": port,
        "log_config": log_config(log_level.upper()),
        "server_header": False,
    }
    if workers == 1:
        uvicorn.run(create_app(settings), **options)
    else:  # each process builds its own app (and database pool) from the same environment
        try:
            uvicorn.run("outreach.web.app:create_app", factory=True, workers=workers, **options)
        finally:
            if metrics_dir:
                shutil.rmtree(metrics_dir, ignore_errors=True)
