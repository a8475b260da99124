"""Core commands: database schema."""

from __future__ import annotations

import typer
from rich.console import Console

from outreach.cli import app
from outreach.config import get_settings
from outreach.db import upgrade

console = Console()
db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Create or migrate the schema of OUTREACH_DATABASE_URL."""
    settings = get_settings()
    upgrade(settings.database_url, revision)
    console.print(f"[green]schema at {revision}[/green] ({settings.database_url.split('@')[-1]})")
