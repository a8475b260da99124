"""`outreach subject export|erase`: a customer's access and erasure requests."""

from __future__ import annotations

from pathlib import Path

import typer

from outreach.cli import app
from outreach.config import get_settings
from outreach.db import make_engine
from outreach.subjects import export as access
from outreach.subjects.erase import UnknownCustomer, erase

subject_app = typer.Typer(help="A customer's rights: access (export) and erasure.", no_args_is_help=True)
app.add_typer(subject_app, name="subject")


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


@subject_app.command("export")
def export_subject(
    customer_id: str = typer.Argument(..., help="Customer id."),
    out: Path = typer.Option(..., "--out", help="Folder for <customer>.json and <customer>.html."),
) -> None:
    """Everything held about the customer, as JSON and a readable HTML page (an erased one: the tombstone)."""
    engine = make_engine(get_settings().database_url)
    try:
        result = access.collect(engine, customer_id)
        paths = access.write(result, out)
        access.record(engine, customer_id, len(paths))
    except access.UnknownSubject as exc:
        raise _fail(f"unknown customer {customer_id}: nothing held, nothing written") from exc
    finally:
        engine.dispose()
    state = "erased: tombstone only" if result.erased else "all data held"
    typer.echo(f"{customer_id} ({state}): {paths[0]} and {paths[1]}")


@subject_app.command("erase")
def erase_subject(
    customer_id: str = typer.Argument(..., help="Customer id."),
    files: list[Path] = typer.Option(
        [],
        "--files",
        help="More folders Outreach wrote to (reports, call-list exports); the outbox is always searched.",
    ),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
) -> None:
    """Remove or pseudonymise the customer's data in every table and file; keep a hashed tombstone."""
    settings = get_settings()
    if not yes:
        typer.confirm(f"Erase customer {customer_id}? This cannot be undone", abort=True)
    engine = make_engine(settings.database_url)
    try:
        report = erase(engine, customer_id, [Path(settings.outbox_dir), *files])
    except UnknownCustomer as exc:
        raise _fail(f"unknown customer {customer_id}: nothing erased") from exc
    finally:
        engine.dispose()
    rows = sum(report.rows.values())
    typer.echo(
        f"{customer_id} erased: {rows} rows deleted or pseudonymised, {len(report.files.deleted)} files "
        f"deleted, {len(report.files.rewritten)} rewritten; tombstone and audit entry {report.audit_seq} kept"
    )
    for path in report.files.unreadable:
        typer.echo(f"check by hand (binary, may hold the customer): {path}")
