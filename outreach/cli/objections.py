"""``outreach objections``: e-mailed objections that wait for a person, and their decisions."""

from __future__ import annotations

import getpass
from datetime import UTC

import typer
from rich.console import Console
from rich.table import Table

from outreach import objections
from outreach.cli import app
from outreach.config import get_settings
from outreach.db import make_engine, session_scope

objections_app = typer.Typer(help="E-mailed objections waiting for review.", no_args_is_help=True)
app.add_typer(objections_app, name="objections")
console = Console()
REASONS = {
    "no_match": "no customer has this address",
    "several_matches": "several customers share this address",
    "spf_failed": "SPF did not pass: the sender may be forged",
    "dkim_failed": "no passing DKIM signature of the sender's domain",
    "no_sender": "no readable From address",
}


def _reviewer() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@objections_app.command("review")
def review() -> None:
    """The mails waiting for a decision: who sent them, and why they were not applied."""
    engine = make_engine(get_settings().database_url)
    try:
        with session_scope(engine) as session:
            rows = [
                (str(r.id), r.received_at, r.sender or "-", r.subject or "-", REASONS.get(r.reason, r.reason))
                for r in objections.pending(session)
            ]
    finally:
        engine.dispose()
    table = Table(title=f"Objection mails waiting for review ({len(rows)})")
    for column in ("id", "received (UTC)", "from", "subject", "why not applied"):
        table.add_column(column)
    for mail_id, received, *rest in rows:
        stamp = (received if received.tzinfo else received.replace(tzinfo=UTC)).strftime("%Y-%m-%d %H:%M")
        table.add_row(mail_id, stamp, *rest)
    console.print(table)
    if rows:
        console.print("Decide with: outreach objections apply ID CUSTOMER  |  outreach objections dismiss ID")


def _decide(mail_id: int, customer_id: str | None) -> None:
    engine = make_engine(get_settings().database_url)
    try:
        with session_scope(engine) as session:
            objections.resolve(session, mail_id, customer_id, _reviewer())
    except objections.ObjectionError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    finally:
        engine.dispose()


@objections_app.command("apply")
def apply(
    mail_id: int = typer.Argument(..., help="The id from `outreach objections review`."),
    customer_id: str = typer.Argument(..., help="The customer who sent it, as checked by you."),
) -> None:
    """Record the objection (all marketing) for the customer you identified."""
    _decide(mail_id, customer_id)
    console.print(f"objection mail {mail_id}: {customer_id} opted out of all marketing")


@objections_app.command("dismiss")
def dismiss(mail_id: int = typer.Argument(..., help="The id from `outreach objections review`.")) -> None:
    """Close the mail without a consent change (not an objection, or not our customer)."""
    _decide(mail_id, None)
    console.print(f"objection mail {mail_id}: dismissed")
