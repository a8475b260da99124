"""``outreach api-clients``: the bank's systems that may call the consent API, and their keys."""

from __future__ import annotations

from datetime import UTC

import typer
from rich.console import Console
from rich.table import Table

from outreach import api_clients
from outreach.cli import app
from outreach.config import get_settings
from outreach.db import make_engine, session_scope

clients_app = typer.Typer(
    help="API clients of the consent API: keys, scopes, rotation.", no_args_is_help=True
)
app.add_typer(clients_app, name="api-clients")
console = Console()
err = Console(stderr=True)


def _run(action):
    engine = make_engine(get_settings().database_url)
    try:
        with session_scope(engine) as session:
            return action(session)
    except api_clients.ApiClientError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    finally:
        engine.dispose()


def _show_key(name: str, key: str) -> None:
    err.print(f"API key of {name} (shown once, store it in the client's secret store):")
    print(key)  # alone on stdout, so a script can capture it


@clients_app.command("create")
def create(
    name: str = typer.Argument(..., help="The client's name, e.g. online-banking."),
    scope: list[str] = typer.Option(
        ["consent:read", "consent:write"], "--scope", help="consent:read and/or consent:write (repeat)."
    ),
    rate_limit: str = typer.Option(
        None, "--rate-limit", help="e.g. 200/second (default: OUTREACH_CONSENT__API_RATE_LIMIT)."
    ),
) -> None:
    """Create a client and print its key once."""
    key = _run(lambda s: api_clients.create(s, name, scope, rate_limit))
    _show_key(name, key)


@clients_app.command("rotate")
def rotate(name: str = typer.Argument(..., help="The client's name.")) -> None:
    """A new key for the client; the old key stops working at once."""
    key = _run(lambda s: api_clients.rotate(s, name))
    _show_key(name, key)


@clients_app.command("revoke")
def revoke(name: str = typer.Argument(..., help="The client's name.")) -> None:
    """Revoke the client: its key stops working at once."""
    _run(lambda s: api_clients.revoke(s, name))
    console.print(f"{name}: revoked")


@clients_app.command("list")
def listing() -> None:
    """Every client: scopes, rate limit, key id (not the secret), created, rotated, revoked."""

    def rows(session):
        return [
            (c.name, c.scopes, c.rate_limit or "default", c.key_id, c.created_at, c.rotated_at, c.revoked_at)
            for c in api_clients.listing(session)
        ]

    table = Table(title="Consent API clients")
    for column in ("name", "scopes", "rate limit", "key id", "created", "rotated", "revoked"):
        table.add_column(column)
    for *text, created, rotated, revoked in _run(rows):
        table.add_row(*text, *(_stamp(v) for v in (created, rotated, revoked)))
    console.print(table)


def _stamp(value) -> str:
    if value is None:
        return "-"
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
