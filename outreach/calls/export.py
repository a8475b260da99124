"""The day's call list of one team for a dialler: CSV or Excel (openpyxl)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from outreach import spreadsheets
from outreach.calls.accounts import team_named
from outreach.calls.hours import zone
from outreach.calls.models import CallTask
from outreach.calls.script import render_script
from outreach.config import OffersFile
from outreach.db import as_utc
from outreach.errors import InputError
from outreach.models import Customer
from outreach.rendering import Renderer

# what a dialler needs to place and note the call; nothing more (no customer id, address or email)
COLUMNS = (
    "task_id",
    "rank",
    "status",
    "attempts",
    "first_name",
    "last_name",
    "phone",
    "language",
    "offer",
    "trigger",
    "call_from",
    "call_until",
    "timezone",
    "script",
)
FORMATS = ("csv", "xlsx")


class ExportError(InputError):
    pass


def call_list(session: Session, day: date, team: str, offers: OffersFile, renderer: Renderer) -> list[dict]:
    """The team's tasks of that calling day, best first, open ones included as they stand."""
    team_row = team_named(session, team)
    by_code = offers.by_code()
    rows = session.execute(
        select(CallTask, Customer)
        .join(Customer, Customer.customer_id == CallTask.customer_id)
        .where(CallTask.team_id == team_row.id, CallTask.call_date == day)
        .order_by(CallTask.priority.desc(), CallTask.score.desc(), CallTask.id)
    ).all()
    out = []
    for rank, (task, customer) in enumerate(rows, start=1):
        local = zone(customer.timezone)
        script = render_script(renderer, customer, by_code.get(task.offer_code), task.offer_code, "")
        out.append(
            {
                "task_id": task.id,
                "rank": rank,
                "status": task.status,
                "attempts": task.attempts,
                "first_name": customer.first_name,
                "last_name": customer.last_name,
                "phone": customer.mobile or "",
                "language": customer.language,
                "offer": task.offer_code,
                "trigger": task.trigger_text or "",
                "call_from": as_utc(task.next_attempt_at).astimezone(local).strftime("%Y-%m-%d %H:%M"),
                "call_until": as_utc(task.window_end).astimezone(local).strftime("%Y-%m-%d %H:%M"),
                "timezone": str(local),
                "script": script.body,
            }
        )
    return out


def write(rows: list[dict], path: Path, fmt: str) -> Path:
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}: use csv or xlsx")
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        with path.open("w", newline="", encoding="utf-8") as handle:
            spreadsheets.write_csv(handle, COLUMNS, rows)
    else:
        spreadsheets.write_xlsx(path, COLUMNS, rows, title="calls")
    return path
