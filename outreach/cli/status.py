"""``outreach status --date D``: the day's delivery lifecycle per channel and offer."""

from __future__ import annotations

from datetime import UTC, date, datetime

from rich.console import Console
from rich.table import Table

from outreach.cli import app
from outreach.cli.day_args import DayOption
from outreach.config import get_settings
from outreach.db import engine_for
from outreach.delivery_status import lifecycle

console = Console()
COLUMNS = (
    ("messages", "messages"),
    ("sent", "sent"),
    ("delivered", "delivered"),
    ("failed", "failed"),
    ("bounced", "bounced"),
    ("awaiting", "awaiting"),
    ("unknown", "unknown"),
    ("opted_out_after_contact", "opted out after"),
)


def _parse_day(value: date | None) -> date:
    return value if value is not None else datetime.now(UTC).date()


@app.command()
def status(
    day: date | None = DayOption("Run date, YYYY-MM-DD (default: today, UTC)."),
) -> None:
    """Sent, delivered, failed (top reasons), bounced and opted out after contact, per channel and offer."""
    run_date = _parse_day(day)
    report = lifecycle(engine_for(get_settings().database_url), run_date)
    table = Table(title=f"Delivery status {run_date.isoformat()}")
    table.add_column("channel")
    table.add_column("offer")
    for _, title in COLUMNS:
        table.add_column(title, justify="right")
    table.add_column("top failure reasons")
    for row in report.rows:
        table.add_row(
            row.channel,
            row.offer_code,
            *(str(getattr(row, key)) for key, _ in COLUMNS),
            row.top_failure_reasons,
        )
    if report.rows:
        totals = report.totals()
        table.add_row("total", "", *(str(totals[key]) for key, _ in COLUMNS), "", style="bold")
    console.print(table if report.rows else f"no messages for {run_date.isoformat()}")
    if report.unmatched_events:
        console.print(
            f"[yellow]{report.unmatched_events} provider event(s) that day matched no message[/yellow]"
        )
