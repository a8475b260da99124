"""Template commands: `outreach templates check` and `outreach templates preview`."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from outreach.campaigns.loader import load_directory, variant_offers
from outreach.cli import app
from outreach.config import ConfigError, get_settings, load_offers
from outreach.rendering import Renderer, TemplateError, message_context
from outreach.sms_segments import count_segments
from outreach.templates_check import (
    SAMPLE_CUSTOMERS,
    SAMPLE_RUN_DATE,
    SAMPLE_TRIGGERS,
    SAMPLE_UNSUBSCRIBE_URL,
    check_templates,
)

console = Console()
err = Console(stderr=True)
templates_app = typer.Typer(help="Message templates: check them all, preview one.", no_args_is_help=True)
app.add_typer(templates_app, name="templates")


def _offers(offers_file: Path | None):
    path = offers_file or get_settings().offers_file
    try:
        return load_offers(path)
    except ConfigError as exc:
        err.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(2) from exc


@templates_app.command("check")
def check(
    templates_dir: Path = typer.Option(None, help="Default: OUTREACH_TEMPLATES_DIR."),
    offers_file: Path = typer.Option(None, help="Default: OUTREACH_OFFERS_FILE."),
    max_sms_segments: int = typer.Option(None, min=1, help="Default: OUTREACH_SMS_MAX_SEGMENTS (2)."),
) -> None:
    """Render every template of every offer and language against sample customers; fail on faults."""
    settings = get_settings()
    offers = _offers(offers_file)
    templates = templates_dir or settings.templates_dir
    loaded, _problems = load_directory(settings.campaigns_dir, offers, templates)  # their variants' templates
    report = check_templates(
        templates,
        offers,
        max_sms_segments or settings.sms_max_segments,
        also=[o for item in loaded for o in variant_offers(item.campaign, offers)],
    )
    for problem in report.problems:
        colour = "red" if problem.severity == "error" else "yellow"
        console.print(f"[{colour}]{escape(str(problem))}[/{colour}]")
    summary = (
        f"{len(report.templates)} templates, {report.renders} renders: "
        f"{len(report.errors)} error(s), {len(report.warnings)} warning(s)"
    )
    if not report.ok:
        err.print(f"[red]templates check failed[/red]: {summary}")
        raise typer.Exit(1)
    console.print(f"[green]templates OK[/green]: {summary}")


@templates_app.command("preview")
def preview(
    offer_code: str = typer.Argument(..., help="Offer code, e.g. KIDS_SAVINGS."),
    channel: str = typer.Argument(..., help="sms, email, letter or call."),
    language: str = typer.Option("nl", help="Customer language; a missing one falls back to nl."),
    sample: int = typer.Option(1, min=1, max=len(SAMPLE_CUSTOMERS), help="Which sample customer."),
    pdf: Path = typer.Option(None, help="For letters: also write the PDF here."),
    reference: str = typer.Option("PREVIEW", help="For letters: the reference (letter id) printed on it."),
    templates_dir: Path = typer.Option(None),
    offers_file: Path = typer.Option(None),
) -> None:
    """Show one message as a sample customer would get it (and the letter PDF with --pdf)."""
    offers = _offers(offers_file).by_code()
    if offer_code.upper() not in offers:
        err.print(f"[red]no offer {escape(offer_code)}[/red]; known: {', '.join(offers)}")
        raise typer.Exit(2)
    offer = offers[offer_code.upper()]
    customer = SAMPLE_CUSTOMERS[sample - 1]
    context = message_context(customer, offer, SAMPLE_TRIGGERS[0], SAMPLE_RUN_DATE, SAMPLE_UNSUBSCRIBE_URL)
    renderer = Renderer(templates_dir or get_settings().templates_dir)
    try:
        rendered = renderer.render(channel, offer.template_for(channel), language, context)
    except TemplateError as exc:
        err.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(1) from exc
    if rendered.note:
        console.print(f"[yellow]note: {escape(rendered.note)}[/yellow]")
    if rendered.subject:
        console.print(f"[bold]{escape(rendered.subject)}[/bold]\n")
    console.print(escape(rendered.body))
    if channel == "sms":
        console.print(f"\n[dim]{count_segments(rendered.body).describe()}[/dim]")
    if pdf and channel == "letter":
        _write_letter(pdf, rendered, customer, offer.code, SAMPLE_RUN_DATE, reference)
        console.print(f"\n[green]letter written to {pdf}[/green]")


def _write_letter(
    path: Path, rendered, customer: dict, offer_code: str, run_date: date, reference: str
) -> None:
    from channels.base import Address, OutboundMessage
    from channels.letter_pdf import Window, render_letter

    address = Address(
        name=f"{customer['first_name']} {customer['last_name']}",
        street=customer["street"],
        house_number=customer["house_number"],
        postal_code=customer["postal_code"],
        city=customer["city"],
        country=customer["country"],
    )
    message = OutboundMessage(
        message_id=reference,
        channel="letter",
        customer_id=customer["customer_id"],
        offer_code=offer_code,
        run_date=run_date,
        to=customer["customer_id"],
        body=rendered.body,
        subject=rendered.subject,
        language=rendered.language,
        address=address,
    )
    data, _pages = render_letter(message, Window.parse(get_settings().letter_window_mm))
    path.write_bytes(data)
