"""Run the daily flow locally and print its funnel; `outreach demo` builds a synthetic bank first."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from outreach.cli import app
from outreach.cli.day_args import DayOption, bank_today, or_today
from outreach.cli.errors import quiet_known_errors
from outreach.config import Settings, get_settings, load_offers
from outreach.day_lock import day_lock
from outreach.db import engine_for, upgrade
from outreach.funnel import Funnel, compute

console = Console()


def _prefect_env() -> None:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


def run_flow(run_date: date, candidates_file: Path | None) -> dict:
    """Run the day's flow here. What a user can fix is checked first, so that it is said in one line
    by the error boundary rather than logged by Prefect with a traceback."""
    settings = get_settings()
    load_offers(settings.offers_file)
    if candidates_file is not None and not candidates_file.is_file():
        raise FileNotFoundError(2, "No such file", str(candidates_file))
    with day_lock(engine_for(settings.database_url), run_date):
        pass  # free now; the flow holds it while it runs (a run starting meanwhile still stops it)
    _prefect_env()
    from flows.daily import daily_outreach  # Prefect is imported only when a flow runs

    quiet_known_errors()
    return daily_outreach(
        run_date=run_date.isoformat(), candidates_file=str(candidates_file) if candidates_file else None
    )


def print_funnel(funnel: Funnel) -> None:
    stages = Table(title=f"Funnel {funnel.run_date.isoformat()}", show_lines=False)
    stages.add_column("stage")
    stages.add_column("count", justify="right")
    for name, count in [
        ("candidates", funnel.candidates),
        ("eligible", funnel.eligible),
        ("planned", funnel.planned),
        ("held (quiet hours)", funnel.held),
        ("sent", funnel.sent),
        ("delivered", funnel.delivered),
    ]:
        stages.add_row(name, f"{count:,}")
    console.print(stages)
    reasons = Table(title="Outcomes by reason")
    reasons.add_column("reason")
    reasons.add_column("count", justify="right")
    for reason, count in sorted(funnel.reasons.items(), key=lambda kv: -kv[1]):
        reasons.add_row(reason, f"{count:,}")
    console.print(reasons)
    channels = Table(title="Messages by channel and status")
    channels.add_column("channel")
    statuses = sorted({s for v in funnel.channels.values() for s in v})
    for status in statuses:
        channels.add_column(status, justify="right")
    for channel, counts in sorted(funnel.channels.items()):
        channels.add_row(channel, *[f"{counts.get(s, 0):,}" for s in statuses])
    console.print(channels)
    if not funnel.balanced:
        console.print(f"[red]{funnel.undecided} candidates have no decision[/red]")


@app.command("run")
def run(
    run_date: date | None = DayOption("Day to run (YYYY-MM-DD); default the bank's today."),
    candidates: Path = typer.Option(
        None, "--candidates", help="A candidates CSV/Parquet instead of payment signals."
    ),
) -> None:
    """Run the daily-outreach flow for a date (idempotent: a second run sends nothing twice)."""
    settings = get_settings()
    upgrade(settings.database_url)
    day = or_today(run_date, settings)
    run_flow(day, candidates)
    print_funnel(compute(engine_for(settings.database_url), day))


def _outputs(outbox: Path, day: date) -> list[tuple[str, str]]:
    folder = outbox / day.isoformat()
    found = []
    for channel, pattern in [("sms", "*.json"), ("email", "*.eml"), ("letter", "*.pdf"), ("call", "*.csv")]:
        files = sorted((folder / channel).glob(pattern)) if (folder / channel).exists() else []
        found.append((channel, f"{folder / channel}  ({len(files)} files)"))
    batches = sorted((folder / "print").glob("*")) if (folder / "print").exists() else []
    if batches:
        found.append(("print batches", f"{folder / 'print'}  ({len(batches)} files)"))
    return found


@app.command("demo")
def demo(
    customers: int = typer.Option(10_000, help="Customers in the synthetic bank."),
    seed: int = typer.Option(1, help="Seed: the same seed gives the same bank."),
    data_dir: Path = typer.Option(Path("demo"), help="Where the synthetic CSV files go."),
) -> None:
    """Build a synthetic bank (once), then run today's flow end to end on the local outbox channels."""
    from outreach.importer import import_directory
    from outreach_dev.synth import generate

    settings = _demo_unsubscribe_secret(get_settings())
    upgrade(settings.database_url)
    engine = engine_for(settings.database_url)
    day = bank_today(settings)
    if _customer_count(engine) == 0:
        console.print(f"[bold]Generating a synthetic bank of {customers:,} customers[/bold] in {data_dir}/")
        generate(data_dir, customers=customers, seed=seed, as_of=day)
        for kind, report in import_directory(engine, data_dir).items():
            console.print(f"  {kind:13} {report.summary()}")
    else:
        console.print("Synthetic bank already in the database; reusing it (delete outreach.db to restart).")
    _demo_teams(engine)
    from outreach_dev.demo_campaign import seed_demo_campaign

    summary = seed_demo_campaign(engine, settings)
    console.print(f"Demo {summary.line()}; see `outreach campaigns report {summary.campaign}`")
    console.print(f"[bold]Running daily-outreach for {day.isoformat()}[/bold] on Prefect's embedded server")
    run_flow(day, None)
    print_funnel(compute(engine, day))
    console.print("[bold]Outputs[/bold]")
    for name, where in _outputs(settings.outbox_dir, day):
        console.print(f"  {name:14} {where}")
    console.print(f"  {'database':14} {settings.database_url}")
    console.print("Next: `outreach export decisions --date " + day.isoformat() + "`, `outreach --help`.")


def _demo_unsubscribe_secret(settings: Settings, env_file: Path = Path(".env")) -> Settings:
    """Emails carry a personal, signed one-click unsubscribe link only with a secret. The demo
    makes one for this checkout, in ``.env`` (git-ignored; read by the settings and by
    ``outreach serve``), so the demo's links work against the local service. Never in the repo."""
    if settings.unsubscribe_secret is not None and settings.unsubscribe_secret.get_secret_value():
        return settings
    import secrets

    value = secrets.token_urlsafe(32)
    with env_file.open("a", encoding="utf-8") as handle:
        handle.write(
            f"\n# made by `outreach demo` for this checkout only\nOUTREACH_UNSUBSCRIBE_SECRET={value}\n"
        )
    os.environ["OUTREACH_UNSUBSCRIBE_SECRET"] = value  # the flow run in this process reads it too
    get_settings.cache_clear()
    console.print(f"Made a local unsubscribe secret in {env_file} (git-ignored) for signed one-click links")
    return get_settings()


def _demo_teams(engine) -> None:
    """Two call-centre teams (Dutch and English) sharing the policy's call capacity, once."""
    from sqlalchemy import func, select

    from outreach.calls.accounts import add_team
    from outreach.calls.models import Team
    from outreach.db import session_scope

    capacity = load_offers(get_settings().offers_file).policy.capacity.get("call", 100)
    with session_scope(engine) as session:
        if session.scalar(select(func.count()).select_from(Team)):
            return
        add_team(session, "team-nl", calls_per_day=max(capacity - capacity // 5, 1), language="nl")
        add_team(session, "team-en", calls_per_day=max(capacity // 5, 1), language="en")


def _customer_count(engine) -> int:
    from sqlalchemy import func, select

    from outreach.db import session_scope
    from outreach.models import Customer

    with session_scope(engine) as session:
        return session.scalar(select(func.count()).select_from(Customer)) or 0
