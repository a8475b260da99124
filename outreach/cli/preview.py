"""`outreach preview`: a dry run of a day's decision. Nothing is written to the ledger, nothing is sent."""

from __future__ import annotations

import json
from datetime import date, datetime
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from outreach.cli import app
from outreach.cli.day_args import DayOption, offers_and_day, parse_moment
from outreach.config import get_settings
from outreach.db import make_engine
from outreach.policy.engine import REASONS
from outreach.policy.preview import preview_day

console = Console()


@app.command("preview")
def preview(
    day: date | None = DayOption("The day to preview (YYYY-MM-DD); default the bank's today."),
    limit: int = typer.Option(2, "--limit", min=0, max=50, help="Sample messages to render per channel."),
    at: datetime | None = typer.Option(
        None,
        "--at",
        parser=parse_moment,
        metavar="YYYY-MM-DDTHH:MM",
        help="When the messages would go out (ISO time); default: the policy's send_hour that day.",
    ),
    output: str = typer.Option("table", "--format", help="table | json"),
) -> None:
    """Who would get what that day, and why not the others — without writing or sending anything."""
    settings = get_settings()
    offers, run_date = offers_and_day(settings, day)
    zone = ZoneInfo(offers.policy.default_timezone)
    moment = at if at else datetime.combine(run_date, offers.policy.send_hour)
    moment = moment if moment.tzinfo else moment.replace(tzinfo=zone)
    engine = make_engine(settings.database_url)
    try:
        report, _ = preview_day(engine, run_date, offers, moment, settings.templates_dir, limit)
    finally:
        engine.dispose()
    if output == "json":
        print(json.dumps(report.to_json(), indent=2, default=str))
        return
    console.print(
        Panel(
            f"Dry run for [bold]{run_date}[/bold], messages going out at {moment.isoformat()} — "
            f"nothing was written or sent. Decided {report.funnel['candidates']:,} candidates "
            f"in {report.seconds:.1f} s.",
            title="outreach preview",
        )
    )
    funnel = Table(title="Funnel")
    funnel.add_column("stage")
    funnel.add_column("count", justify="right")
    for name, count in report.funnel.items():
        funnel.add_row(name.replace("_", " "), f"{count:,}")
    console.print(funnel)
    reasons = Table(title="Every outcome by reason")
    for column in ("reason", "count", "what it means"):
        reasons.add_column(column, justify="right" if column == "count" else "left")
    for code, count in report.reasons.items():
        reasons.add_row(code, f"{count:,}", REASONS.get(code, ""))
    console.print(reasons)
    per_offer = Table(title="Per offer")
    for column in ("offer", "planned", "held", "not contacted", "rejected", "by channel (planned + held)"):
        per_offer.add_column(column, justify="left" if column.startswith(("offer", "by")) else "right")
    for code, counts in sorted(report.offers.items()):
        via = ", ".join(f"{k[4:]} {v:,}" for k, v in sorted(counts.items()) if k.startswith("via "))
        per_offer.add_row(
            code,
            *[f"{counts.get(c, 0):,}" for c in ("planned", "held", "suppressed", "rejected")],
            via or "-",
        )
    console.print(per_offer)
    channels = Table(title="Per channel and capacity")
    for column in ("channel", "planned", "held", "capacity", "use", "fell back into", "turned away (full)"):
        channels.add_column(column, justify="left" if column == "channel" else "right")
    for channel, c in report.channels.items():
        used = (c["planned"] or 0) + (c["held"] or 0)
        cap = c["capacity"]
        use = f"{used / cap:.0%}" if cap else "no cap"
        channels.add_row(
            channel,
            f"{c['planned']:,}",
            f"{c['held']:,}",
            f"{cap:,}" if cap else "-",
            use,
            f"{c['fell_back_into']:,}",
            f"{c['turned_away_full']:,}",
        )
    console.print(channels)
    for sample in report.samples:
        head = (
            f"{sample.channel} · {sample.offer_code} · {sample.outcome} · to {sample.to} · {sample.language}"
        )
        if sample.error:
            console.print(Panel(f"[red]template error:[/red] {sample.error}", title=head))
            continue
        text = (f"Subject: {sample.subject}\n\n" if sample.subject else "") + sample.body
        console.print(Panel(text, title=head))
