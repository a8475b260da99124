"""Data commands: generate a synthetic bank, import the bank's files, load candidates, export."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from datetime import date
from enum import Enum
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.exc import OperationalError, ProgrammingError

from outreach import exports
from outreach.candidates import FileDrop, PaymentSignals, SqlQuery, load_candidates
from outreach.candidates.base import CandidateSourceError
from outreach.cli import app
from outreach.cli.day_args import DayOption
from outreach.config import ConfigError, get_settings, load_offers
from outreach.db import engine_for
from outreach.importer import KINDS, ImportFileError, ImportReport, import_file
from outreach.triggers import triggers_for

out = Console(soft_wrap=True)
err = Console(stderr=True)
BIG_FILE = 1_000_000  # bytes: larger files get a progress bar

ImportKind = Enum("ImportKind", {kind: kind for kind in (*KINDS, "all")}, type=str)
ExportKind = Enum("ExportKind", {kind: kind for kind in exports.KINDS}, type=str)
ExportFormat = Enum("ExportFormat", {fmt: fmt for fmt in exports.FORMATS}, type=str)


def _day(value: date | None) -> date:
    return value if value is not None else date.today()


def _offer_codes() -> list[str] | None:
    """The configured offer codes, so candidates naming another offer are rejected on the way in."""
    path = get_settings().offers_file
    if not path.is_file():
        err.print(f"[yellow]note:[/yellow] {path} not found: offer codes of candidates are not checked")
        return None
    try:
        return list(load_offers(path).by_code())
    except ConfigError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc


@contextmanager
def _schema_hint():
    """A missing table means the database was never migrated: say what to run."""
    try:
        yield
    except (OperationalError, ProgrammingError) as exc:
        text = str(exc.orig or exc)
        if "no such table" in text or "does not exist" in text:
            err.print(f"[red]the database has no Outreach schema ({text.splitlines()[0]})[/red]")
            err.print("run [bold]outreach db upgrade[/bold] first")
            raise typer.Exit(2) from exc
        raise


def _count_rows(path: Path) -> int:
    with path.open("rb") as handle:
        return max(sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b"")) - 1, 0)


def _import_one(kind: str, path: Path, offer_codes: list[str] | None) -> ImportReport:
    engine = engine_for(get_settings().database_url)
    if not path.is_file() or path.stat().st_size < BIG_FILE:
        return import_file(engine, kind, path, offer_codes=offer_codes)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task(f"importing {path.name}", total=_count_rows(path))
        return import_file(
            engine,
            kind,
            path,
            offer_codes=offer_codes,
            on_progress=lambda n: progress.update(task, completed=n),
        )


def _show_rejections(reports: list[ImportReport], show: int) -> None:
    rejected = sum(r.rejected for r in reports)
    if not rejected:
        return
    table = Table(title=f"rejected rows ({rejected})", title_justify="left")
    for heading in ("file", "row", "column", "why"):
        table.add_column(heading, overflow="fold")
    listed = 0
    for report in reports:
        for rejection in report.rejections:
            if listed >= show:
                break
            table.add_row(rejection.file, str(rejection.row), rejection.column, rejection.reason)
            listed += 1
    out.print(table)
    if rejected > listed:
        out.print(
            f"... and {rejected - listed} more: all are in the import_rejections table (batch_id per file)"
        )


@app.command("generate")
def generate_cmd(
    customers: int = typer.Option(10_000, "--customers", "-n", min=1, help="How many customers."),
    seed: int = typer.Option(1, "--seed", "-s", help="Same seed and date, same files."),
    out_dir: Path = typer.Option(Path("demo/bank"), "--out", "-o", help="Folder for the CSV files."),
    as_of: date | None = DayOption("The bank's 'today' (YYYY-MM-DD); default today.", "--as-of"),
) -> None:
    """Write a synthetic bank (customers, transactions, consents, suppressions, holdings) as CSV."""
    from outreach_dev.synth import generate

    day = _day(as_of)
    started = time.perf_counter()
    summary = generate(out_dir, customers=customers, seed=seed, as_of=day)
    for kind, count in summary.rows.items():
        out.print(f"{summary.out_dir / (kind + '.csv')}: {count} rows")
    out.print(
        f"[green]generated[/green] as of {day} with seed {seed} in {time.perf_counter() - started:.1f} s"
    )
    out.print(f"import with: outreach import all {summary.out_dir}")


@app.command("import")
def import_cmd(
    kind: ImportKind = typer.Argument(..., help="What the file holds; 'all' imports a folder of <kind>.csv."),
    path: Path = typer.Argument(..., help="The CSV file (a folder for 'all')."),
    show: int = typer.Option(50, "--show", help="How many rejected rows to list."),
) -> None:
    """Import a CSV file (or a folder with 'all').

    Exit code 1 when rows were rejected (they are listed), 2 when a file could not be read at all.
    """
    kind_name = kind.value
    offer_codes = _offer_codes() if kind_name in ("candidates", "all") else None
    reports: list[ImportReport] = []
    with _schema_hint():
        try:
            if kind_name == "all":
                if not path.is_dir():
                    raise ImportFileError(f"{path}: not a folder")
                found = [(k, path / f"{k}.csv") for k in KINDS if (path / f"{k}.csv").is_file()]
                if not found:
                    raise ImportFileError(f"{path}: no import files ({', '.join(k + '.csv' for k in KINDS)})")
                for each_kind, each_path in found:
                    reports.append(_import_one(each_kind, each_path, offer_codes))
                    out.print(reports[-1].summary())
            else:
                reports.append(_import_one(kind_name, path, offer_codes))
                out.print(reports[-1].summary())
        except ImportFileError as exc:
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from exc
    _show_rejections(reports, show)
    if any(report.rejected for report in reports):
        raise typer.Exit(1)


@app.command("candidates")
def candidates_cmd(
    run_date: date | None = DayOption("Run date (YYYY-MM-DD); default today.", "--date", "-d"),
    file: str | None = typer.Option(
        None, "--file", help="A file drop: path pattern with {date} (CSV or Parquet)."
    ),
    sql_url: str | None = typer.Option(
        None, "--sql-url", help="A warehouse's SQLAlchemy URL (with --query)."
    ),
    query: str | None = typer.Option(None, "--query", help="SQL text; may use :run_date."),
    lookback: int = typer.Option(3, "--lookback", min=1, help="Payment signals: days looked back."),
    show: int = typer.Option(50, "--show", help="How many rejected rows to list."),
) -> None:
    """Load a day's candidates: from a file drop, a SQL query, or (default) the payment signals."""
    day = _day(run_date)
    engine = engine_for(get_settings().database_url)
    if file and (sql_url or query):
        raise typer.BadParameter("use --file or --sql-url/--query, not both")
    if file:
        source = FileDrop(file)
    elif sql_url or query:
        if not (sql_url and query):
            raise typer.BadParameter("--sql-url and --query go together")
        source = SqlQuery(sql_url, query)
    else:
        offers_file = get_settings().offers_file
        try:
            triggers = triggers_for(offers_file, set(load_offers(offers_file).by_code()))
        except ConfigError as exc:
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from exc
        source = PaymentSignals(engine, lookback_days=lookback, triggers=triggers)
    with _schema_hint():
        try:
            report = load_candidates(engine, day, source, offer_codes=_offer_codes())
        except CandidateSourceError as exc:
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from exc
    out.print(report.summary())
    as_import = ImportReport(
        "candidates", source.name, rejected=report.rejected, rejections=report.rejections
    )
    _show_rejections([as_import], show)
    if report.rejected:
        raise typer.Exit(1)


@app.command("export")
def export_cmd(
    kind: ExportKind = typer.Argument(..., help="decisions or messages"),
    run_date: date | None = DayOption("The day (YYYY-MM-DD); default today.", "--date", "-d"),
    fmt: ExportFormat = typer.Option(ExportFormat("csv"), "--format", "-f", help="csv or jsonl"),
    out_file: Path | None = typer.Option(None, "--out", "-o", help="Write to a file instead of stdout."),
) -> None:
    """Stream a day's decisions or ledger messages as CSV or JSON Lines (ids only, no contact data)."""
    day = _day(run_date)
    engine = engine_for(get_settings().database_url)
    with _schema_hint():
        if out_file is None:
            exports.write(engine, kind.value, day, fmt.value, sys.stdout)
            sys.stdout.flush()
            return
        with out_file.open("w", encoding="utf-8", newline="") as handle:
            count = exports.write(engine, kind.value, day, fmt.value, handle)
    err.print(f"{count} {kind.value} of {day} written to {out_file}")
