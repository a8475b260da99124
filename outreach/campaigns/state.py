"""The campaigns' state store: definitions as last synced from campaigns/, the pause switch, budgets
used and the lifecycle state (draft, scheduled, active, paused, finished)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import Engine, case, func, insert, select, update

from outreach import audit
from outreach.campaigns.assignment import CONTROL, TREATMENT
from outreach.campaigns.loader import LoadedCampaign
from outreach.campaigns.model import Campaign
from outreach.campaigns.tables import CampaignAssignment, CampaignEvent, CampaignRecord
from outreach.db import session_scope
from outreach.errors import NotFound
from outreach.models import Decision, Message


class UnknownCampaign(NotFound):
    pass


def now() -> datetime:
    return datetime.now(UTC)


def sync(engine: Engine, loaded: Iterable[LoadedCampaign]) -> int:
    """Store each campaign's definition as it is in its file now; the pause switch is kept."""
    items = list(loaded)
    stamp = now()
    with session_scope(engine) as session:
        existing = set(session.scalars(select(CampaignRecord.name)))
        for item in items:
            values = {
                "owner": item.campaign.owner,
                "file": str(item.path)[-255:],
                "definition": item.campaign.model_dump(mode="json"),
                "synced_at": stamp,
            }
            if item.campaign.name in existing:
                session.execute(
                    update(CampaignRecord).where(CampaignRecord.name == item.campaign.name).values(**values)
                )
            else:
                session.execute(
                    insert(CampaignRecord), [{"name": item.campaign.name, "paused": False, **values}]
                )
            audit.record_config(
                session, "campaign", item.campaign.name, values["definition"] | {"file": values["file"]}
            )
    return len(items)


@dataclass(frozen=True)
class Stored:
    campaign: Campaign
    paused: bool
    file: str


def stored(engine: Engine, names: Sequence[str] | None = None) -> dict[str, Stored]:
    """Campaigns as last synced (all, or those named)."""
    stmt = select(CampaignRecord)
    if names is not None:
        stmt = stmt.where(CampaignRecord.name.in_(list(names)))
    with session_scope(engine) as session:
        return {
            r.name: Stored(Campaign.model_validate(r.definition), bool(r.paused), r.file)
            for r in session.scalars(stmt)
        }


def set_paused(
    engine: Engine, name: str, paused: bool, detail: str | None = None, actor: str | None = None
) -> bool:
    """Pause or resume; returns False when it already was. Takes effect at the next batch (see gate)."""
    with session_scope(engine) as session:
        record = session.get(CampaignRecord, name)
        if record is None:
            raise UnknownCampaign(name)
        if bool(record.paused) == paused:
            return False
        stamp = now()
        record.paused = paused
        record.paused_at = stamp if paused else None
        session.add(
            CampaignEvent(
                campaign=name, kind="paused" if paused else "resumed", at=stamp, count=0, detail=detail
            )
        )
        kind = "paused" if paused else "resumed"
        audit.append(session, f"campaign.{kind}", {"campaign": name, "detail": detail}, actor=actor, at=stamp)
    return True


def record_held_back(engine: Engine, counts: dict[str, int], detail: str) -> None:
    """A batch left some messages unsent because their campaign is paused: say so, with the count."""
    if not counts:
        return
    stamp = now()
    with session_scope(engine) as session:
        session.execute(
            insert(CampaignEvent),
            [
                {"campaign": name, "kind": "held_back", "at": stamp, "count": count, "detail": detail}
                for name, count in sorted(counts.items())
            ],
        )


def events(engine: Engine, name: str, limit: int = 20) -> list[CampaignEvent]:
    with session_scope(engine) as session:
        return list(
            session.scalars(
                select(CampaignEvent)
                .where(CampaignEvent.campaign == name)
                .order_by(CampaignEvent.at.desc(), CampaignEvent.id.desc())
                .limit(limit)
            )
        )


def budget_used(engine: Engine, names: Sequence[str], day: date) -> dict[str, tuple[int, int]]:
    """(used today, used in total) per campaign: treatment assignments, i.e. messages planned."""
    used = {name: (0, 0) for name in names}
    with session_scope(engine) as session:
        rows = session.execute(
            select(
                CampaignAssignment.campaign,
                func.count(),
                func.sum(case((CampaignAssignment.assigned_on == day, 1), else_=0)),
            )
            .where(CampaignAssignment.campaign.in_(list(names)), CampaignAssignment.arm == TREATMENT)
            .group_by(CampaignAssignment.campaign)
        ).all()
    for name, total, today in rows:
        used[name] = (int(today or 0), int(total or 0))
    return used


@dataclass
class Status:
    name: str
    owner: str
    state: str
    window: str
    offers: str
    budget_daily: int | None
    budget_total: int | None
    used_total: int
    planned_today: int  # treatment messages of the day (planned or held)
    control_today: int
    waiting_today: int  # today's messages not yet sent (held, or waiting for a resume)
    file: str


def status(engine: Engine, campaigns: Sequence[LoadedCampaign], day: date) -> list[Status]:
    """The overview behind ``outreach campaigns list``: one row per campaign file."""
    names = [c.campaign.name for c in campaigns]
    saved = stored(engine, names)
    used = budget_used(engine, names, day)
    today: dict[tuple[str, str], int] = {}
    waiting: dict[str, int] = {}
    with session_scope(engine) as session:
        for name, arm, count in session.execute(
            select(CampaignAssignment.campaign, CampaignAssignment.arm, func.count())
            .where(CampaignAssignment.campaign.in_(names), CampaignAssignment.assigned_on == day)
            .group_by(CampaignAssignment.campaign, CampaignAssignment.arm)
        ):
            today[(name, arm)] = count
        for name, count in session.execute(
            select(CampaignAssignment.campaign, func.count())
            .join(Decision, Decision.candidate_id == CampaignAssignment.candidate_id)
            .join(Message, Message.decision_id == Decision.id)
            .where(
                CampaignAssignment.campaign.in_(names),
                CampaignAssignment.assigned_on == day,
                Message.status == "planned",
            )
            .group_by(CampaignAssignment.campaign)
        ):
            waiting[name] = count
    rows = []
    for item in campaigns:
        c = item.campaign
        paused = saved[c.name].paused if c.name in saved else False
        rows.append(
            Status(
                name=c.name,
                owner=c.owner,
                state=c.state_on(day, paused),
                window=f"{c.window.start} .. {c.window.end}",
                offers=", ".join(c.offers),
                budget_daily=c.budget.daily,
                budget_total=c.budget.total,
                used_total=used[c.name][1],
                planned_today=today.get((c.name, TREATMENT), 0),
                control_today=today.get((c.name, CONTROL), 0),
                waiting_today=waiting.get(c.name, 0),
                file=str(item.path),
            )
        )
    return rows
