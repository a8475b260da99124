"""`outreach compliance report`: the accountability report for a period, as HTML and PDF."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer

from outreach.cli import app
from outreach.compliance import report as accountability
from outreach.compliance.figures import Period
from outreach.config import ConfigError, get_settings, load_offers
from outreach.db import make_engine

compliance_app = typer.Typer(help="Accountability for the regulator.", no_args_is_help=True)
app.add_typer(compliance_app, name="compliance")


def _date(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        typer.echo(f"{option} {value!r}: not a date (YYYY-MM-DD)", err=True)
        raise typer.Exit(2) from exc


@compliance_app.command("report")
def report(
    first: str = typer.Option(..., "--from", help="First day (UTC), YYYY-MM-DD."),
    last: str = typer.Option(..., "--to", help="Last day (UTC), YYYY-MM-DD, inclusive."),
    out: Path = typer.Option(Path("reports"), "--out", help="Folder for the HTML and PDF files."),
) -> None:
    """Per offer and channel: contacts, objections, their effect, complaints, the must-be-zero checks,
    opt-out rate, and each offer's legitimate-interest assessment."""
    period = Period(_date(first, "--from"), _date(last, "--to"))
    if period.last < period.first:
        typer.echo(f"--to {last} is before --from {first}", err=True)
        raise typer.Exit(2)
    settings = get_settings()
    try:
        offers = load_offers(settings.offers_file)
    except ConfigError as exc:
        typer.echo(str(exc).splitlines()[0], err=True)
        raise typer.Exit(2) from exc
    engine = make_engine(settings.database_url)
    try:
        result = accountability.build(engine, period, offers)
    finally:
        engine.dispose()
    chart = accountability.charts_png(result)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"compliance-{period.first}-{period.last}"
    html, pdf = stem.with_suffix(".html"), stem.with_suffix(".pdf")
    html.write_text(accountability.to_html(result, chart), encoding="utf-8")
    pdf.write_bytes(accountability.to_pdf(result, chart))
    total = result.total()
    objections = sum(o["objections"] for o in result.objections)
    must_be_zero = (
        f"despite objection {total.despite_objection}, despite suppression {total.despite_suppression}, "
        f"in quiet hours {total.quiet_hours} (each must be 0)"
    )
    typer.echo(
        f"{period.first} to {period.last}: {total.contacts} contacts, {objections} objections; {must_be_zero}"
    )
    typer.echo(f"written: {html} and {pdf}")
