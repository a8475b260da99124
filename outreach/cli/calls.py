"""Call-centre commands: teams, agents, the day's call tasks and the dialler export."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from outreach.calls import accounts, export, tasks
from outreach.calls.models import Agent, CallTask, Team
from outreach.cli import app
from outreach.cli.day_args import DayOption, or_today
from outreach.config import ConfigError, get_settings, load_offers
from outreach.db import make_engine, session_scope
from outreach.rendering import Renderer, TemplateError

console = Console()
err = Console(stderr=True)
teams_app = typer.Typer(help="Call-centre teams and their daily capacity.", no_args_is_help=True)
agents_app = typer.Typer(help="Call-centre agents and supervisors (sign-in accounts).", no_args_is_help=True)
calls_app = typer.Typer(
    help="The day's call tasks: create, expire, export for a dialler.", no_args_is_help=True
)
app.add_typer(teams_app, name="teams")
app.add_typer(agents_app, name="agents")
app.add_typer(calls_app, name="calls")


def _engine():
    return make_engine(get_settings().database_url)


def _fail(message: str) -> None:
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(2)


def _day(value: date | None) -> date:
    return or_today(value)


# --------------------------------------------------------------------------- teams


@teams_app.command("add")
def teams_add(
    name: str = typer.Argument(..., help="Team name, e.g. nl-1."),
    calls_per_day: int = typer.Option(..., "--calls-per-day", help="How many calls the team can make a day."),
    language: str | None = typer.Option(None, help="nl or en: customers of that language; omit for any."),
) -> None:
    """Create a team."""
    try:
        with session_scope(_engine()) as session:
            accounts.add_team(session, name, calls_per_day, language)
    except accounts.AccountError as exc:
        _fail(str(exc))
    console.print(
        f"team [bold]{name}[/bold] created: {calls_per_day} calls a day, language {language or 'any'}"
    )


@teams_app.command("capacity")
def teams_capacity(name: str, calls_per_day: int = typer.Argument(..., help="New calls per day.")) -> None:
    """Change a team's daily capacity (applies to tasks created from now on)."""
    try:
        with session_scope(_engine()) as session:
            accounts.set_capacity(session, name, calls_per_day)
    except accounts.AccountError as exc:
        _fail(str(exc))
    console.print(f"team [bold]{name}[/bold]: {calls_per_day} calls a day")


@teams_app.command("list")
def teams_list() -> None:
    """Teams with their language, capacity and number of agents."""
    table = Table("team", "language", "calls/day", "agents")
    with session_scope(_engine()) as session:
        counts = dict(session.execute(select(Agent.team_id, func.count()).group_by(Agent.team_id)).all())
        for team in session.scalars(select(Team).order_by(Team.name)):
            table.add_row(
                team.name, team.language or "any", str(team.calls_per_day), str(counts.get(team.id, 0))
            )
    console.print(table)


# --------------------------------------------------------------------------- agents


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


@agents_app.command("add")
def agents_add(
    username: str = typer.Argument(..., help="Sign-in name."),
    team: str = typer.Option(..., "--team", help="The agent's team."),
    supervisor: bool = typer.Option(False, "--supervisor", help="May see the team's progress."),
    name: str | None = typer.Option(None, "--name", help="Name said in the call script (default: username)."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin."),
) -> None:
    """Create a sign-in account; the password is prompted for (or read from stdin), stored as argon2id."""
    password = _password(password_stdin)
    try:
        with session_scope(_engine()) as session:
            accounts.add_agent(
                session,
                username,
                password,
                team,
                role="supervisor" if supervisor else "agent",
                display_name=name,
            )
    except accounts.AccountError as exc:
        _fail(str(exc))
    role = "supervisor" if supervisor else "agent"
    console.print(f"{role} [bold]{username.strip().lower()}[/bold] added to team {team}")


@agents_app.command("list")
def agents_list() -> None:
    """Agents with their team, role and whether their account is locked."""
    table = Table("username", "name", "team", "role", "active", "locked until")
    with session_scope(_engine()) as session:
        rows = session.execute(select(Agent, Team.name).join(Team).order_by(Team.name, Agent.username))
        for agent, team in rows:
            ends = accounts.lock_ends(agent)
            table.add_row(
                agent.username,
                agent.display_name,
                team,
                agent.role,
                "yes" if agent.active else "no",
                f"{ends:%Y-%m-%d %H:%M} UTC" if ends else "",
            )
    console.print(table)


@agents_app.command("unlock")
def agents_unlock(username: str = typer.Argument(..., help="Sign-in name.")) -> None:
    """Lift the lock that repeated wrong passwords put on an account."""
    try:
        with session_scope(_engine()) as session:
            accounts.unlock(session, username)
    except accounts.AccountError as exc:
        _fail(str(exc))
    console.print(f"agent [bold]{username.strip().lower()}[/bold] unlocked")


# --------------------------------------------------------------------------- call tasks


@calls_app.command("create")
def calls_create(date_: date | None = DayOption("Run date (default today).")) -> None:
    """Create the day's call tasks from the ledger's sent call messages (idempotent)."""
    settings = get_settings()
    try:
        offers = load_offers(settings.offers_file)
    except ConfigError as exc:
        _fail(str(exc))
    report = tasks.create_tasks_report(_engine(), _day(date_), offers=offers)
    console.print(
        f"{report.tasks} call task(s) created; closed as failed: {report.over_capacity} over team capacity, "
        f"{report.no_team} without a team for their language, {report.no_phone} without a valid phone"
    )


@calls_app.command("expire")
def calls_expire(
    date_: str | None = DayOption("Expire tasks of this day and before (default today)."),
) -> None:
    """Expire tasks whose calling window has closed (run after calling hours)."""
    n = tasks.expire_tasks(_engine(), _day(date_))
    console.print(f"{n} call task(s) expired")


@calls_app.command("status")
def calls_status(
    date_: date | None = DayOption("Calling day (default today)."),
) -> None:
    """Tasks per team and state for a calling day."""
    day = _day(date_)
    table = Table("team", "open", "claimed", "done", "expired", "cancelled", title=f"call tasks {day}")
    with session_scope(_engine()) as session:
        counts: dict[tuple[str, str], int] = {
            (team, status): n
            for team, status, n in session.execute(
                select(Team.name, CallTask.status, func.count())
                .join(Team, Team.id == CallTask.team_id)
                .where(CallTask.call_date == day)
                .group_by(Team.name, CallTask.status)
            )
        }
        for team in sorted({t for t, _ in counts}):
            table.add_row(
                team,
                *(str(counts.get((team, s), 0)) for s in ("open", "claimed", "done", "expired", "cancelled")),
            )
    console.print(table)


@calls_app.command("export")
def calls_export(
    date_: date | None = DayOption("Calling day (default today)."),
    team: str = typer.Option(..., "--team", help="Team whose list to export."),
    fmt: str = typer.Option("csv", "--format", help="csv or xlsx."),
    out: Path | None = typer.Option(
        None, "--out", help="File to write (default call-list-TEAM-DATE.FORMAT)."
    ),
) -> None:
    """Write a team's call list for a dialler (names, phones, scripts: handle it as personal data)."""
    if fmt not in export.FORMATS:
        _fail(f"--format {fmt!r}: use csv or xlsx")
    day = _day(date_)
    settings = get_settings()
    try:
        offers = load_offers(settings.offers_file)
        with session_scope(_engine()) as session:
            rows = export.call_list(session, day, team, offers, Renderer(settings.templates_dir))
    except (ConfigError, TemplateError, accounts.AccountError) as exc:
        _fail(str(exc))
    path = out or Path(f"call-list-{team}-{day.isoformat()}.{fmt}")
    export.write(rows, path, fmt)
    console.print(f"{len(rows)} call(s) of team {team} on {day} written to {path}")
