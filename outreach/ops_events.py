"""The operator's business signals of a day, as plain data: what Prefect events say (flows/ emits them).

Names follow Prefect's event grammar (``outreach.<thing>.<what happened>``); the resource is the day
(``outreach.day.2026-11-18``) or the channel (``outreach.channel.sms``). Payloads carry counts, rates
and ids, never personal data: they are built only from the funnel's counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from outreach.funnel import Funnel

# a message that reached a provider (or a printer, or a call list): the failure rate's denominator
ATTEMPTED = ("sent", "delivered", "undelivered", "bounced", "failed", "unknown")
FAILED = ("failed", "undelivered", "bounced")


@dataclass(frozen=True)
class Signal:
    event: str
    resource_id: str
    payload: dict[str, int | float | str]
    related: tuple[tuple[str, str], ...] = field(default=())  # (resource id, role)


def day_resource(day: date) -> str:
    return f"outreach.day.{day.isoformat()}"


def channel_resource(channel: str) -> str:
    return f"outreach.channel.{channel}"


def day_planned(day: date, plan: Mapping[str, int]) -> Signal:
    """The plan is written: how many candidates were decided and messages planned."""
    counts = {key: int(plan.get(key, 0)) for key in ("decided", "messages_planned")}
    return Signal("outreach.day.planned", day_resource(day), {"run_date": day.isoformat(), **counts})


def day_completed(funnel: Funnel) -> Signal:
    """Every due message of the day was handled: the funnel's stages and each channel's total."""
    payload: dict[str, int | float | str] = {
        "run_date": funnel.run_date.isoformat(),
        "candidates": funnel.candidates,
        "eligible": funnel.eligible,
        "planned": funnel.planned,
        "held": funnel.held,
        "sent": funnel.sent,
        "delivered": funnel.delivered,
        "undecided": funnel.undecided,
    }
    payload.update({f"messages_{ch}": sum(statuses.values()) for ch, statuses in funnel.channels.items()})
    return Signal("outreach.day.completed", day_resource(funnel.run_date), payload)


def channel_failures(funnel: Funnel) -> list[Signal]:
    """One signal per channel with attempts that day: failed / attempted, for a threshold alert."""
    signals = []
    for channel, statuses in sorted(funnel.channels.items()):
        attempted = sum(statuses.get(status, 0) for status in ATTEMPTED)
        if not attempted:
            continue
        failed = sum(statuses.get(status, 0) for status in FAILED)
        payload = {
            "run_date": funnel.run_date.isoformat(),
            "channel": channel,
            "attempted": attempted,
            "failed": failed,
            "failure_rate": round(failed / attempted, 4),
        }
        related = ((day_resource(funnel.run_date), "day"),)
        signals.append(Signal("outreach.channel.failures", channel_resource(channel), payload, related))
    return signals
