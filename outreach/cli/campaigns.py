"""Campaign commands: validate, list, show, pause, resume, report, seed-demo."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from pathlib import Path
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.table import Table

from outreach.campaigns import state
from outreach.campaigns.loader import LoadedCampaign, campaign_files, load_all, load_file
from outreach.cli import app
from outreach.cli.day_args import DayOption
from outreach.config import ConfigError, OffersFile, get_settings, load_offers
from outreach.db import engine_for, upgrade

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
campaigns_app = typer.Typer(
    help="Campaigns (campaigns/*.yaml): validate, list, show, pause, resume, report.", no_args_is_help=True
)
app.add_typer(campaigns_app, name="campaigns")

ReportFormat = Enum("ReportFormat", {f: f for f in ("md", "html", "both")}, type=str)


def _offers() -> OffersFile:
    try:
        return load_offers(get_settings().offers_file)
    except ConfigError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc


def _today(offers: OffersFile) -> date:
    """The bank's calendar day, not the server's UTC date."""
    return datetime.now(ZoneInfo(offers.policy.default_timezone)).date()


def _day(value: date | None, offers: OffersFile) -> date:
    return value if value is not None else _today(offers)


def _engine():
    settings = get_settings()
    upgrade(settings.database_url)
    return engine_for(settings.database_url)


def _load(offers: OffersFile) -> list[LoadedCampaign]:
    """Every valid campaign file; problems of the others are printed (they do not stop list or show)."""
    settings = get_settings()
    loaded, problems = load_all(campaign_files(settings.campaigns_dir), offers, settings.templates_dir)
    for problem in problems:
        err.print(f"[yellow]left out:[/yellow] {problem}")
    return loaded


def _one(name: str, offers: OffersFile) -> LoadedCampaign:
    settings = get_settings()
    path = settings.campaigns_dir / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(p.stem for p in campaign_files(settings.campaigns_dir)) or "none"
        err.print(f"[red]no campaign {name!r}: {path} not found[/red] (campaigns: {known})")
        raise typer.Exit(2)
    try:
        return load_file(path, offers, settings.templates_dir)
    except ValueError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc


@campaigns_app.command("validate")
def validate(
    files: list[Path] = typer.Argument(None, help="Campaign files; default: every file in campaigns/."),
) -> None:
    """Check campaign files; print file:line: key: reason for each problem (exit 1 if any).

    Schema, dates, budgets, the variant split adding up to 100%, and the offers, channels, send
    times and templates a campaign names."""
    settings = get_settings()
    offers = _offers()
    paths = list(files) if files else campaign_files(settings.campaigns_dir)
    if not paths:
        err.print(f"no campaign files in {settings.campaigns_dir}/")
        raise typer.Exit(2)
    loaded, problems = load_all(paths, offers, settings.templates_dir)
    for problem in problems:
        out.print(str(problem), markup=False, highlight=False)
    bad = len({p.file for p in problems})
    summary = f"{len(loaded)} valid, {bad} with problems ({len(problems)} problems)"
    if problems:
        err.print(f"[red]{summary}[/red]")
        raise typer.Exit(1)
    out.print(f"[green]{summary}[/green]: " + ", ".join(item.campaign.name for item in loaded))


@campaigns_app.command("list")
def list_campaigns(date_: date | None = DayOption("Day to show (default today).")) -> None:
    """Every campaign: state, window, budget used and the day's volume."""
    offers = _offers()
    day = _day(date_, offers)
    rows = state.status(_engine(), _load(offers), day)
    table = Table(title=f"Campaigns on {day.isoformat()}")
    for column, justify in [
        ("name", "left"),
        ("state", "left"),
        ("window", "left"),
        ("offers", "left"),
        ("budget used / total", "right"),
        ("daily budget", "right"),
        ("planned today", "right"),
        ("control today", "right"),
        ("waiting today", "right"),
    ]:
        table.add_column(column, justify=justify)
    for r in rows:
        table.add_row(
            r.name,
            r.state,
            r.window,
            r.offers,
            f"{r.used_total:,} / {r.budget_total:,}" if r.budget_total else f"{r.used_total:,} / -",
            f"{r.budget_daily:,}" if r.budget_daily else "-",
            f"{r.planned_today:,}",
            f"{r.control_today:,}",
            f"{r.waiting_today:,}",
        )
    out.print(table)


@campaigns_app.command("show")
def show(
    name: str = typer.Argument(..., help="Campaign name."),
    date_: date | None = DayOption("Day to show (default today)."),
) -> None:
    """One campaign: its definition, state, budget used, the day's volume and recent events."""
    offers = _offers()
    day = _day(date_, offers)
    item = _one(name, offers)
    engine = _engine()
    c = item.campaign
    (status,) = state.status(engine, [item], day)
    table = Table(title=f"Campaign {c.name}", show_header=False)
    table.add_column("key", style="bold")
    table.add_column("value")
    audience = c.audience
    who = []
    if audience.age:
        who.append(f"age {audience.age.min}-{audience.age.max}")
    if audience.postcode_prefixes:
        who.append("postcode " + "/".join(f"{p}xx" for p in audience.postcode_prefixes))
    if audience.cities:
        who.append("city " + ", ".join(audience.cities))
    if audience.languages:
        who.append("language " + ", ".join(audience.languages))
    if audience.holds:
        who.append("holds " + ", ".join(audience.holds))
    if audience.not_holds:
        who.append("does not hold " + ", ".join(audience.not_holds))
    for key, value in [
        ("file", str(item.path)),
        ("owner", c.owner),
        ("description", c.description or "-"),
        ("state", f"{status.state} on {day.isoformat()}"),
        ("window", status.window),
        ("offers", ", ".join(c.offers)),
        ("audience", "; ".join(who) or "everyone"),
        ("channels", ", ".join(c.channels) if c.channels else "the offers' own"),
        ("send times", ", ".join(f"{ch} {t:%H:%M}" for ch, t in c.send_times.items()) or "-"),
        ("budget", f"daily {c.budget.daily or '-'}, total {c.budget.total or '-'}"),
        ("budget used", f"{status.used_total:,} messages in total"),
        (
            "today",
            f"{status.planned_today:,} planned, {status.control_today:,} control, "
            f"{status.waiting_today:,} waiting",
        ),
        (
            "variants",
            ", ".join(
                f"{v.name} {v.percent:g}%"
                + (
                    " (" + ", ".join(f"{ch}: {t}" for ch, t in v.templates.items()) + ")"
                    if v.templates
                    else ""
                )
                for v in c.variants
            ),
        ),
        ("holdout", f"{c.holdout_percent:g}%"),
        ("priority", str(c.priority)),
        ("attribution", f"{c.attribution_days} days"),
    ]:
        table.add_row(key, value)
    out.print(table)
    recent = state.events(engine, c.name)
    if recent:
        events = Table(title="Recent events")
        for column in ("at", "event", "count", "detail"):
            events.add_column(column)
        for e in recent:
            events.add_row(e.at.isoformat(timespec="seconds"), e.kind, str(e.count or ""), e.detail or "")
        out.print(events)


def _switch(name: str, paused: bool) -> None:
    offers = _offers()
    item = _one(name, offers)
    engine = _engine()
    state.sync(engine, [item])
    changed = state.set_paused(
        engine, name, paused, detail="outreach campaigns " + ("pause" if paused else "resume")
    )
    word = "paused" if paused else "resumed"
    if not changed:
        out.print(f"{name} was already {word}")
        return
    if paused:
        out.print(f"[yellow]{name} paused[/yellow]: no batch sent from now on includes its messages")
    else:
        out.print(f"[green]{name} resumed[/green]: its waiting messages go out with the next batch")


@campaigns_app.command("pause")
def pause(name: str = typer.Argument(..., help="Campaign name.")) -> None:
    """Pause a campaign before the next batch: its messages stay planned until it is resumed."""
    _switch(name, True)


@campaigns_app.command("resume")
def resume(name: str = typer.Argument(..., help="Campaign name.")) -> None:
    """Resume a paused campaign: its waiting messages go out with the next batch."""
    _switch(name, False)


@campaigns_app.command("report")
def report(
    name: str = typer.Argument(..., help="Campaign name."),
    out_dir: Path = typer.Option(Path("reports"), "--out", help="Where the report files go."),
    fmt: ReportFormat = typer.Option("both", "--format", help="md, html or both."),
    date_: date | None = DayOption("Report as of this day (default today)."),
    attribution_days: int = typer.Option(None, "--attribution-days", min=1, help="Override the campaign's."),
) -> None:
    """Results per variant and channel, uplift against the control group (95% CI), chart; Markdown/HTML."""
    from outreach.campaigns.report import build_report

    offers = _offers()
    engine = _engine()
    try:
        result = build_report(
            engine, name, offers, as_of=_day(date_, offers), attribution_days=attribution_days
        )
    except state.UnknownCampaign:
        err.print(f"[red]campaign {name!r} has never run (nothing in the database)[/red]")
        raise typer.Exit(2) from None
    out_dir.mkdir(parents=True, exist_ok=True)
    chart = out_dir / f"{name}-uplift.png"
    chart.write_bytes(result.chart_png())
    written = [chart]
    if fmt.value in ("md", "both"):
        path = out_dir / f"{name}.md"
        path.write_text(result.to_markdown(chart=chart.name), encoding="utf-8")
        written.append(path)
    if fmt.value in ("html", "both"):
        path = out_dir / f"{name}.html"
        path.write_text(result.to_html(), encoding="utf-8")
        written.append(path)
    out.print(f"[bold]{result.headline()}[/bold]")
    table = Table(title=f"{name}: conversion within {result.attribution_days} days")
    headers = [
        "arm",
        "variant",
        "channel",
        "entered",
        "contacted",
        "delivered",
        "responded",
        "converted",
        "rate %",
        "uplift pp",
        "95% CI pp",
        "p",
    ]
    for header in headers:
        table.add_column(
            header, justify="left" if header in ("arm", "variant", "channel", "95% CI pp") else "right"
        )
    for r in result.table():
        table.add_row(
            r["arm"],
            r["variant"],
            r["channel"],
            f"{r['entered']:,}",
            f"{r['contacted']:,}",
            f"{r['delivered']:,}",
            f"{r['responded']:,}",
            f"{r['converted']:,}",
            "" if r["conversion_rate_pct"] is None else f"{r['conversion_rate_pct']:.2f}",
            "" if r["uplift_pp"] is None else f"{r['uplift_pp']:+.2f}",
            "" if r["uplift_pp"] is None else f"{r['ci95_low_pp']:+.2f} to {r['ci95_high_pp']:+.2f}",
            "" if r["p_value"] is None else f"{r['p_value']:.3g}",
        )
    out.print(table)
    for note in result.notes:
        out.print(f"[yellow]{note}[/yellow]")
    out.print("written: " + ", ".join(str(p) for p in written))


@campaigns_app.command("seed-demo")
def seed_demo(
    name: str = typer.Option("savings-autumn-2026", help="The (past) campaign to simulate."),
    seed: int = typer.Option(7, help="Seed of the simulated responses."),
) -> None:
    """Simulate a finished campaign (its days and the customers' response) for the demo.

    Needs a bank in the database (`outreach demo` or `outreach import`); afterwards
    `outreach campaigns report NAME` shows its result."""
    from outreach_dev.demo_campaign import seed_demo_campaign

    settings = get_settings()
    summary = seed_demo_campaign(_engine(), settings, name=name, seed=seed)
    out.print(summary.line())
