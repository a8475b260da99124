"""A dry run of one day's decision: the whole engine on that day's data, nothing written anywhere.

The report answers marketing operations' question "who gets what, and why not the others":
the funnel with every drop reason, counts per offer and channel, capacity use, and a few
rendered sample messages per channel (contact data masked).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path

import polars as pl
from sqlalchemy import Engine, select

from outreach.config import OffersFile
from outreach.db import session_scope
from outreach.models import Candidate, Customer
from outreach.pii import mask_email, mask_phone, scrub
from outreach.policy.engine import REASONS, decide
from outreach.policy.inputs import load_inputs
from outreach.rendering import Renderer, TemplateError, message_context

POST_ELIGIBILITY = ("lost_arbitration", "over_capacity")


@dataclass
class Sample:
    channel: str
    offer_code: str
    outcome: str
    to: str  # masked
    language: str
    subject: str | None
    body: str  # contact data masked
    error: str | None = None  # a template that fails to render shows here, not as "Beste ,"


@dataclass
class PreviewReport:
    run_date: date
    at: datetime
    seconds: float
    funnel: dict[str, int]
    reasons: dict[str, int]
    offers: dict[str, dict[str, int]]  # offer -> outcome/channel -> count
    channels: dict[str, dict[str, int | None]]  # channel -> planned/held/capacity/fallback_in
    samples: list[Sample] = field(default_factory=list)

    def to_json(self) -> dict:
        data = asdict(self)
        data["run_date"] = self.run_date.isoformat()
        data["at"] = self.at.isoformat()
        data["reason_descriptions"] = {code: REASONS[code] for code in self.reasons if code in REASONS}
        return data


def _counts(frame: pl.DataFrame, column: str) -> dict[str, int]:
    return {k: int(v) for k, v in frame.group_by(column).len().sort(column).iter_rows() if k is not None}


def summarise(decisions: pl.DataFrame, offers: OffersFile) -> tuple[dict, dict, dict, dict]:
    outcomes = _counts(decisions, "outcome")
    reasons = dict(sorted(_counts(decisions, "reason").items(), key=lambda kv: (-kv[1], kv[0])))
    eligible = sum(outcomes.get(o, 0) for o in ("planned", "held")) + sum(
        reasons.get(r, 0) for r in POST_ELIGIBILITY
    )
    # rejected + not eligible + eligible = candidates; eligible = lost + over capacity + planned + held
    funnel = {
        "candidates": decisions.height,
        "rejected": outcomes.get("rejected", 0),
        "not_eligible": decisions.height - outcomes.get("rejected", 0) - eligible,
        "eligible": eligible,
        "lost_arbitration": reasons.get("lost_arbitration", 0),
        "over_capacity": reasons.get("over_capacity", 0),
        "planned": outcomes.get("planned", 0),
        "held": outcomes.get("held", 0),
    }
    per_offer: dict[str, dict[str, int]] = {}
    for code, outcome, channel, n in (
        decisions.group_by("offer_code", "outcome", "channel").len().sort("offer_code", "outcome").iter_rows()
    ):
        entry = per_offer.setdefault(code, {})
        entry[outcome] = entry.get(outcome, 0) + n
        if channel is not None:
            entry[f"via {channel}"] = entry.get(f"via {channel}", 0) + n
    live = decisions.filter(pl.col("outcome").is_in(["planned", "held"]))
    capacity = offers.policy.capacity
    channels: dict[str, dict[str, int | None]] = {}
    for channel in sorted({c for o in offers.offers for c in o.channels}):
        mine = live.filter(pl.col("channel") == channel)
        fallback_in = mine.filter(pl.col("detail").fill_null("").str.contains("full=")).height
        full_out = decisions.filter(
            pl.col("detail").fill_null("").str.contains(f"full=([a-z,]*,)?{channel}(,|$|;)")
        ).height
        channels[channel] = {
            "planned": mine.filter(pl.col("outcome") == "planned").height,
            "held": mine.filter(pl.col("outcome") == "held").height,
            "capacity": capacity.get(channel),
            "fell_back_into": fallback_in,
            "turned_away_full": full_out,
        }
    return funnel, reasons, per_offer, channels


def _samples(
    engine: Engine,
    decisions: pl.DataFrame,
    offers: OffersFile,
    templates_dir: Path,
    per_channel: int,
    day: date,
) -> list[Sample]:
    live = decisions.filter(pl.col("outcome").is_in(["planned", "held"])).sort("candidate_id")
    if per_channel <= 0:
        return []
    picked = live.group_by("channel", maintain_order=True).head(per_channel)
    if picked.is_empty():
        return []
    renderer = Renderer(templates_dir)
    by_code = offers.by_code()
    ids = picked["candidate_id"].to_list()
    with session_scope(engine) as session:
        rows = session.execute(
            select(Candidate, Customer)
            .join(Customer, Customer.customer_id == Candidate.customer_id)
            .where(Candidate.id.in_(ids))
        ).all()
    found = {cand.id: (cand, cust) for cand, cust in rows}
    samples = []
    for cid, channel, code, outcome in picked.select(
        "candidate_id", "channel", "offer_code", "outcome"
    ).rows():
        cand, cust = found[cid]
        offer = by_code[code]
        context = message_context(
            {c.name: getattr(cust, c.name) for c in Customer.__table__.columns},
            offer,
            {"trigger": cand.trigger, "trigger_ref": cand.trigger_ref, "score": cand.score},
            day,
            "https://example.invalid/unsubscribe/PREVIEW",
        )
        to = {
            "sms": mask_phone(cust.mobile),
            "call": mask_phone(cust.mobile),
            "email": mask_email(cust.email),
        }.get(channel, f"{(cust.postal_code or '')[:4]} ** (address)")
        try:
            r = renderer.render(channel, offer.template_for(channel), cust.language or "nl", context)
            samples.append(
                Sample(channel, code, outcome, to, r.language, r.subject and scrub(r.subject), scrub(r.body))
            )
        except TemplateError as exc:
            samples.append(
                Sample(channel, code, outcome, to, cust.language or "nl", None, "", scrub(str(exc)))
            )
    return samples


def preview_day(
    engine: Engine,
    run_date: date,
    offers: OffersFile,
    at: datetime,
    templates_dir: Path,
    samples_per_channel: int = 2,
) -> tuple[PreviewReport, pl.DataFrame]:
    """Decide ``run_date`` in memory as if it had not run yet; returns the report and the decisions."""
    started = datetime.now()
    inputs = load_inputs(engine, run_date, offers, at, include_same_day=False)
    decisions = decide(inputs)
    seconds = (datetime.now() - started).total_seconds()
    funnel, reasons, per_offer, channels = summarise(decisions, offers)
    samples = _samples(engine, decisions, offers, templates_dir, samples_per_channel, run_date)
    return PreviewReport(run_date, at, seconds, funnel, reasons, per_offer, channels, samples), decisions
