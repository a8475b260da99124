"""Prefect flow ``delivery-reconcile`` (hourly): settle messages stuck in ``sent`` or ``unknown``.

Thin on purpose: the work is outreach.reconcile (replay stored events, ask providers about
``unknown`` messages and for the current status of ``sent`` ones, flag what stays open) and
outreach.delivery_status; this flow runs them as two batch tasks and publishes their tables
(counts only, no personal data) as artifacts.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from prefect import flow, task
from prefect.artifacts import create_table_artifact

from outreach.config import get_settings
from outreach.db import engine_for
from outreach.delivery_status import StatusReport, lifecycle
from outreach.reconcile import ReconcileReport, reconcile


@task(name="reconcile-stuck-messages", persist_result=False)
def reconcile_stuck(older_than_minutes: int, flag_after_hours: int) -> ReconcileReport:
    settings = get_settings()
    return reconcile(
        engine_for(settings.database_url),
        settings,
        older_than=timedelta(minutes=older_than_minutes),
        flag_after=timedelta(hours=flag_after_hours),
    )


@task(name="delivery-status", persist_result=False)
def delivery_status(run_date: date) -> StatusReport:
    return lifecycle(engine_for(get_settings().database_url), run_date)


@flow(name="delivery-reconcile")
def delivery_reconcile(
    older_than_minutes: int = 120, flag_after_hours: int = 24, status_date: date | None = None
) -> dict[str, int]:
    report = reconcile_stuck(older_than_minutes, flag_after_hours)
    create_table_artifact(
        report.records(),
        key="delivery-reconcile",
        description="Messages stuck in sent/unknown, what the providers said and what stays flagged",
    )
    day = status_date or datetime.now(UTC).date()
    status = delivery_status(day)
    create_table_artifact(
        status.records() or [{"channel": "-", "offer_code": "-", "messages": 0}],
        key="delivery-status",
        description=f"Delivery lifecycle {day}; {status.unmatched_events} event(s) matched no message",
    )
    return {
        "stuck": report.stuck,
        "moved": report.moved + report.replayed + report.finalised,
        "status_fetched": report.status_fetched,
        "flagged": report.flagged,
    }


if __name__ == "__main__":
    delivery_reconcile()
