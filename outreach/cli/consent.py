"""Consent commands: record an opt-out or opt-in, and show a customer's consent state and history."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from outreach import audit
from outreach import consent as registry
from outreach.cli import app
from outreach.config import CHANNEL_SCOPE, ConfigError, get_settings, load_offers
from outreach.db import make_engine, session_scope
from outreach.models import Customer

console = Console()
SCOPE_HELP = "all | sms | email | letter | phone | topic:<name> (e.g. topic:credit)"


def _engine():
    return make_engine(get_settings().database_url)


def _require_customer(session, customer_id: str) -> None:
    if session.scalar(select(Customer.customer_id).where(Customer.customer_id == customer_id)) is None:
        console.print(f"[red]unknown customer {customer_id}[/red]: nothing recorded")
        raise typer.Exit(2)


def _record(customer_id: str, scope: str, source: str, choice: str) -> None:
    engine = _engine()
    try:
        with session_scope(engine) as session:
            _require_customer(session, customer_id)
            actor = registry.Actor("cli", audit.os_user())
            event = registry.record(session, customer_id, scope, choice, source, actor=actor)
            stamp = event.recorded_at
    except registry.ConsentError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    finally:
        engine.dispose()
    verb = "opted out of" if choice == "opt_out" else "opted in to"
    console.print(
        f"{customer_id} {verb} [bold]{scope}[/bold] at {stamp:%Y-%m-%d %H:%M:%S} UTC (source: {source})"
    )


@app.command("optout")
def optout(
    customer_id: str = typer.Argument(..., help="Customer id."),
    scope: str = typer.Option("all", "--scope", help=SCOPE_HELP),
    source: str = typer.Option(
        ..., "--source", help="Where the objection came from (e.g. phone, branch, web)."
    ),
) -> None:
    """Record an opt-out. Effective for every message not yet handed to a provider."""
    _record(customer_id, scope, source, "opt_out")


@app.command("optin")
def optin(
    customer_id: str = typer.Argument(..., help="Customer id."),
    scope: str = typer.Option("all", "--scope", help=SCOPE_HELP),
    source: str = typer.Option(..., "--source", help="Where the consent came from."),
) -> None:
    """Record an opt-in (withdraws an earlier opt-out of the same scope; a global opt-out still wins)."""
    _record(customer_id, scope, source, "opt_in")


def _effect(scope: str, choice: str | None, global_out: bool, opt_in_channels: set[str]) -> str:
    channel = next((c for c, s in CHANNEL_SCOPE.items() if s == scope), None)
    if scope != "all" and global_out:
        return "blocked: global opt-out wins"
    if choice == "opt_out":
        return "blocked" if scope != "all" else "blocked: no personalised offers at all"
    if choice == "opt_in":
        return "allowed (explicit opt-in)"
    if channel in opt_in_channels:
        return "blocked: this channel needs an explicit opt-in"
    return "allowed (no objection)"


@app.command("consent")
def show_consent(
    customer_id: str = typer.Argument(..., help="Customer id."),
    output: str = typer.Option("table", "--format", help="table | json"),
) -> None:
    """A customer's current consent per scope and the full history (when, which scope, which source)."""
    settings = get_settings()
    try:
        opt_in_channels = set(load_offers(settings.offers_file).policy.opt_in_channels)
    except ConfigError:
        opt_in_channels = set()
    engine = _engine()
    try:
        with session_scope(engine) as session:
            _require_customer(session, customer_id)
            events = registry.history(session, customer_id)
    finally:
        engine.dispose()
    latest = {}
    for event in events:
        latest[event.scope] = event
    global_out = "all" in latest and latest["all"].choice == "opt_out"
    scopes = [
        "all",
        *sorted(set(CHANNEL_SCOPE.values())),
        *sorted(s for s in latest if s.startswith("topic:")),
    ]
    state = []
    for scope in scopes:
        event = latest.get(scope)
        state.append(
            {
                "scope": scope,
                "choice": event.choice if event else None,
                "since": _stamp(event.recorded_at) if event else None,
                "source": event.source if event else None,
                "by": _who(event) if event else None,
                "effect": _effect(scope, event.choice if event else None, global_out, opt_in_channels),
            }
        )
    history = [
        {
            "at": _stamp(e.recorded_at),
            "scope": e.scope,
            "choice": e.choice,
            "source": e.source,
            "actor_kind": e.actor_kind,
            "actor": e.actor,
            "request_id": e.request_id,
        }
        for e in events
    ]
    if output == "json":
        print(json.dumps({"customer_id": customer_id, "current": state, "history": history}, indent=2))
        return
    table = Table(title=f"Consent of {customer_id} now (the latest event per scope wins)")
    for column in ("scope", "latest choice", "since", "source", "by", "effect"):
        table.add_column(column)
    for row in state:
        table.add_row(
            row["scope"],
            row["choice"] or "-",
            row["since"] or "-",
            row["source"] or "-",
            row["by"] or "-",
            row["effect"],
        )
    console.print(table)
    past = Table(title=f"History ({len(history)} events, oldest first)")
    for column in ("when (UTC)", "scope", "choice", "source", "by (actor)", "request id"):
        past.add_column(column)
    for row in history:
        by = f"{row['actor_kind']}: {row['actor']}" if row["actor_kind"] else "-"
        past.add_row(row["at"], row["scope"], row["choice"], row["source"], by, row["request_id"] or "-")
    console.print(past)


def _who(event) -> str | None:
    return f"{event.actor_kind}: {event.actor}" if event.actor_kind else None


def _stamp(value: datetime) -> str:
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
