"""`outreach fake-providers`: run the local Twilio and SendGrid servers (demo mode, benchmarks)."""

from __future__ import annotations

import signal
import threading

import typer
from rich.console import Console

from outreach.cli import app
from outreach_dev.fakes.base import ALL_KINDS, FaultPlan
from outreach_dev.fakes.sendgrid_server import SendGridServer
from outreach_dev.fakes.twilio_server import TwilioServer

console = Console()


@app.command("fake-providers")
def fake_providers(
    twilio_port: int = typer.Option(4010, help="Port of the local Twilio Messages API."),
    sendgrid_port: int = typer.Option(4011, help="Port of the local SendGrid v3 API."),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    account_sid: str = typer.Option("AC" + "0" * 32, help="Twilio account SID the server accepts."),
    auth_token: str = typer.Option("test-auth-token", help="Twilio auth token (also signs callbacks)."),
    api_key: str = typer.Option("SG.test-key", help="SendGrid API key the server accepts."),
    callbacks: bool = typer.Option(True, help="Post signed Twilio status callbacks to each StatusCallback."),
    event_webhook_url: str = typer.Option(
        None, help="Post signed SendGrid events here, e.g. http://127.0.0.1:8000/webhooks/sendgrid/events."
    ),
    fault_rate: float = typer.Option(0.0, min=0.0, max=1.0, help="Share of sends that get a fault."),
    fault_kinds: str = typer.Option("429,503", help=f"Comma-separated faults among {', '.join(ALL_KINDS)}."),
    retry_after: float = typer.Option(1.0, help="Retry-After seconds on injected 429s."),
    lost_callbacks: float = typer.Option(
        0.0,
        min=0.0,
        max=1.0,
        help="Share of status callbacks / events never posted (messages still advance).",
    ),
    strict: bool = typer.Option(False, help="Also validate every request with openapi-core (slow)."),
) -> None:
    """Serve local stand-ins for Twilio and SendGrid until Ctrl-C (faults configurable)."""
    try:
        plan = FaultPlan(
            rate=fault_rate,
            kinds=tuple(k.strip() for k in fault_kinds.split(",") if k.strip()),
            retry_after=retry_after,
            lost_callbacks=lost_callbacks,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--fault-kinds/--fault-rate") from exc
    twilio = TwilioServer(
        account_sid, auth_token, host=host, port=twilio_port, strict=strict, callbacks=callbacks
    )
    sendgrid = SendGridServer(
        api_key, host=host, port=sendgrid_port, strict=strict, event_webhook_url=event_webhook_url
    )
    for server in (twilio, sendgrid):
        server.set_faults(plan)
        server.start()
    console.print(f"[green]Twilio[/green]   {twilio.url}    [green]SendGrid[/green] {sendgrid.url}")
    console.print("Point Outreach at them with:")
    for line in (
        "OUTREACH_SMS_BACKEND=twilio",
        f"TWILIO_ACCOUNT_SID={account_sid}",
        f"TWILIO_AUTH_TOKEN={auth_token}",
        "OUTREACH_TWILIO_FROM=+3197010000001",
        f"OUTREACH_TWILIO_API_URL={twilio.url}",
        "OUTREACH_EMAIL_BACKEND=sendgrid",
        f"SENDGRID_API_KEY={api_key}",
        "OUTREACH_EMAIL_FROM=aanbod@bank.example",
        f"OUTREACH_SENDGRID_API_URL={sendgrid.url}",
    ):
        console.print(f"  export {line}", highlight=False, soft_wrap=True)
    console.print(f"SendGrid event webhook verification key: {sendgrid.public_key}", soft_wrap=True)
    console.print("Inspect: GET /_fake/requests, /_fake/state; change faults: POST /_fake/faults")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        twilio.stop()
        sendgrid.stop()
        console.print("stopped")
