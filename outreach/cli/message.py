"""`outreach message`: what one message said (its stored content), and the content's retention.

The content is personal data shown to the operator on their own terminal, unmasked; it is printed,
never logged.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime, timedelta

import typer
from rich.console import Console

from outreach import contents
from outreach.cli import app
from outreach.config import get_settings
from outreach.db import make_engine, session_scope
from outreach.models import Message
from outreach.policy.explain import ContentView

console = Console(highlight=False)
message_app = typer.Typer(help="One message's content; content retention.", no_args_is_help=True)
app.add_typer(message_app, name="message")

PART_NAMES = {"sms": "Text", "email": "Plain text", "letter": "Letter body", "call": "Call script"}


def content_lines(view: ContentView, indent: str = "") -> list[str]:
    """Plain lines (print them with markup off: the text may hold brackets)."""
    template = f"{view.channel}/{view.template}.{view.language}.*.j2"
    lines = [
        f"{indent}Rendered {view.rendered_at} in {view.language} from {template} "
        f"(template digest {view.template_digest}; content sha256 {view.content_sha256[:16]})"
    ]
    if view.language_note:
        lines.append(f"{indent}Fallback: {view.language_note}")
    if view.subject is not None:
        lines.append(f"{indent}Subject: {view.subject}")
    lines.append(f"{indent}{PART_NAMES.get(view.channel, 'Text')}:")
    lines += [f"{indent}  | {line}" for line in view.body.splitlines() or [""]]
    if view.html_bytes is not None:
        lines.append(f"{indent}HTML: {view.html_bytes:,} bytes, sha256 {(view.html_sha256 or '')[:16]}")
    return lines


@message_app.command("show")
def show(
    message_id: int = typer.Argument(..., help="The message id (as in `outreach explain`)."),
    html: bool = typer.Option(False, "--html", help="Also print the email's HTML source."),
    output: str = typer.Option("text", "--format", help="text | json"),
) -> None:
    """What was handed to the channel for one message: subject, text, HTML size (or source)."""
    engine = make_engine(get_settings().database_url)
    try:
        with session_scope(engine) as session:
            message = session.get(Message, message_id)
            row = contents.load(session, [message_id]).get(message_id)
            view = ContentView.of(row) if row is not None else None
            source = row.html if row is not None else None
    finally:
        engine.dispose()
    if message is None:
        console.print(f"[red]no message {message_id}[/red]")
        raise typer.Exit(1)
    if output == "json":
        data = {
            "message_id": message.id,
            "customer_id": message.customer_id,
            "offer_code": message.offer_code,
            "channel": message.channel,
            "run_date": message.run_date.isoformat(),
            "status": message.status,
            "content": asdict(view) if view else None,
        }
        if html and view:
            data["content"]["html"] = source
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return
    console.print(
        f"Message #{message.id}: {message.offer_code} by {message.channel} to customer "
        f"{message.customer_id} on {message.run_date}, status {message.status}",
        markup=False,
    )
    if view is None:
        console.print(
            "No stored content: not handed to the channel yet, its template failed, or purged "
            "after the retention period."
        )
        raise typer.Exit(1)
    for line in content_lines(view, "  "):
        console.print(line, markup=False, soft_wrap=True)
    if html and source is not None:
        console.print("HTML source:")
        console.print(source, markup=False, soft_wrap=True)


@message_app.command("purge-content")
def purge_content(
    older_than: int = typer.Option(
        None,
        "--older-than",
        min=1,
        help="Days; content of messages planned before today minus this goes "
        "(default OUTREACH_CONTENT_RETENTION_DAYS, 400).",
    ),
) -> None:
    """Delete the stored content of old messages (personal data); the ledger rows stay."""
    settings = get_settings()
    days = older_than or settings.content_retention_days
    engine = make_engine(settings.database_url)
    try:
        deleted = contents.purge(engine, days)
    finally:
        engine.dispose()
    cutoff = datetime.now(UTC).date() - timedelta(days=days)
    console.print(
        f"deleted the content of {deleted} messages planned before {cutoff} (older than {days} days)"
    )
