"""Emits the core's business signals (outreach.ops_events) as Prefect events: the only Prefect part."""

from __future__ import annotations

from datetime import date

from prefect import task
from prefect.events import emit_event

from outreach.config import get_settings
from outreach.db import engine_for
from outreach.funnel import compute
from outreach.ops_events import Signal, channel_failures, day_completed, day_planned


def emit(signal: Signal) -> None:
    """One Prefect event; inside a run Prefect adds the flow run and task run as related resources."""
    emit_event(
        event=signal.event,
        resource={"prefect.resource.id": signal.resource_id},
        related=[{"prefect.resource.id": rid, "prefect.resource.role": role} for rid, role in signal.related],
        payload=dict(signal.payload),
    )


@task(name="signal-planned", persist_result=False)
def signal_planned_task(day: date, plan: dict) -> None:
    emit(day_planned(day, plan))


@task(name="signal-day-end", persist_result=False)
def signal_day_end_task(day: date, completed: bool) -> int:
    """Each channel's failure rate always; ``outreach.day.completed`` only when nothing is left."""
    funnel = compute(engine_for(get_settings().database_url), day)
    signals = channel_failures(funnel) + ([day_completed(funnel)] if completed else [])
    for signal in signals:
        emit(signal)
    return len(signals)
