"""`outreach audit list|verify`: read the audit log and check its hash chain."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import typer
from rich.console import Console
from rich.table import Table

from outreach import audit
from outreach.cli import app
from outreach.config import get_settings
from outreach.db import as_utc, make_engine, session_scope

console = Console(highlight=False)
audit_app = typer.Typer(help="The tamper-evident audit log: who changed what and when.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


def _day(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)
    except ValueError as exc:
        console.print(f"[red]{option} {value!r}: not a date (YYYY-MM-DD)[/red]")
        raise typer.Exit(2) from exc


@audit_app.command("list")
def list_entries(
    action: str | None = typer.Option(None, "--action", help="Entries whose action starts with this."),
    customer: str | None = typer.Option(None, "--customer", help="Entries about this customer."),
    since: str | None = typer.Option(None, "--from", help="From this day (UTC), YYYY-MM-DD."),
    until: str | None = typer.Option(None, "--to", help="Before this day (UTC), YYYY-MM-DD."),
    limit: int = typer.Option(100, "--limit", min=1, help="The newest N matching entries."),
    output: str = typer.Option("table", "--format", help="table | json"),
) -> None:
    """Entries, oldest first; configuration entries show their hash (--format json adds the diff)."""
    engine = make_engine(get_settings().database_url)
    try:
        with session_scope(engine) as session:
            rows = audit.entries(
                session,
                action=action,
                customer_id=customer,
                since=_day(since, "--from"),
                until=_day(until, "--to"),
                limit=limit,
            )
            items = [
                {
                    "seq": r.seq,
                    "at": as_utc(r.at).isoformat(timespec="seconds"),
                    "actor": r.actor,
                    "action": r.action,
                    "subject": r.subject,
                    "detail": r.detail,
                    "hash": r.entry_hash,
                }
                for r in rows
            ]
    finally:
        engine.dispose()
    if output == "json":
        print(json.dumps(items, indent=1, ensure_ascii=False))
        return
    table = Table(title=f"Audit log ({len(items)} entries)")
    for column in ("seq", "at (UTC)", "actor", "action", "subject", "detail"):
        table.add_column(column)
    for item in items:
        detail = {k: v for k, v in item["detail"].items() if k not in ("content", "diff")}
        table.add_row(
            str(item["seq"]),
            item["at"],
            item["actor"],
            item["action"],
            item["subject"] or "-",
            json.dumps(detail),
        )
    console.print(table)


@audit_app.command("verify")
def verify(
    expect_head: str | None = typer.Option(
        None, "--expect-head", help="A head hash recorded earlier: fails if the chain no longer contains it."
    ),
) -> None:
    """Recompute the hash chain; exit 1 naming the first entry changed, deleted or inserted."""
    engine = make_engine(get_settings().database_url)
    try:
        with session_scope(engine) as session:
            verdict = audit.verify(session)
            anchored = expect_head is None or audit.contains(session, expect_head)
    finally:
        engine.dispose()
    if not verdict.ok:
        typer.echo(f"audit log broken: {verdict.problem}")
        raise typer.Exit(1)
    if not anchored:
        typer.echo(f"audit log broken: the recorded head {expect_head[:16]}... is no longer in the chain")
        raise typer.Exit(1)
    typer.echo(f"audit log intact: {verdict.entries} entries, head {verdict.head}")
