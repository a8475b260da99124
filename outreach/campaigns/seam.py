"""The campaign rules, applied to the decision engine's output for the day (``planning.decide_day``).

The engine has already decided every candidate, campaign or not, with one set of rules: consent,
suppression, caps, cooldown, arbitration (one offer per customer per day across all campaigns; a
campaign's priority is its candidates' score) and channel capacity. The campaign rules only *narrow*
what the engine planned or held; a row the engine suppressed or rejected is never touched. In order,
for each campaign (highest priority first):

1. a campaign that is unknown or not running that day plans nothing (``unknown_campaign``,
   ``campaign_not_running``); a customer who entered the campaign on an earlier day does not enter
   it again (``campaign_already_assigned``);
2. channels: when the campaign narrows or reorders an offer's channels, its rows are decided again
   by the same engine with the narrowed list and the capacity left over, so every engine rule holds
   for the new channel (a row may now be suppressed, e.g. ``no_valid_contact``, never the reverse);
3. the eligible rows enter the campaign in a random (hash) order until the treated rows reach the
   day's budget (``campaign_budget``); of those entering, the control group (hash of customer and
   campaign) gets ``control_group`` and no message; the others get a variant (hash again);
4. timing: a channel's send time holds the message until then in the customer's time zone
   (``campaign_send_time``, release inside the quiet-hours window, never earlier), and a paused
   campaign's messages are held (``campaign_paused``) until it is resumed (``gate`` checks again
   before each batch).

Entries are recorded in ``campaign_assignments``; decisions carry ``campaign=..;arm=..;variant=..``
in their detail, and a held one its release time in ``release_at`` (the ledger's ``not_before``).
"""

from __future__ import annotations

import dataclasses
from datetime import date, time

import polars as pl
from sqlalchemy import Engine, delete, insert, select

from outreach.campaigns import state
from outreach.campaigns.assignment import CONTROL, TREATMENT, arm, budget_order, variant
from outreach.campaigns.model import TRIGGER, Campaign
from outreach.campaigns.tables import CampaignAssignment
from outreach.config import QuietHours
from outreach.db import session_scope
from outreach.policy import DayInputs, decide
from outreach.policy.windows import release_time
from outreach.statuses import LIVE_OUTCOMES, Outcome

LIVE = LIVE_OUTCOMES
CAMPAIGN_REASONS = (  # described in outreach.policy.REASONS
    "control_group",
    "campaign_budget",
    "campaign_paused",
    "campaign_send_time",
    "campaign_already_assigned",
    "campaign_not_running",
    "unknown_campaign",
)
UPDATE_COLUMNS = ("candidate_id", "outcome", "reason", "channel", "detail", "release_at")


def apply(engine: Engine, frame: pl.DataFrame, inputs: DayInputs, *, record: bool = True) -> pl.DataFrame:
    """The engine's decisions with the campaign rules applied; same rows and columns.

    ``record=False`` for a preview: the same outcomes, nothing written (no entries in
    ``campaign_assignments``), so budgets used are those of the stored decisions only.
    """
    if frame.is_empty():
        return frame
    if "trigger" not in inputs.candidates.columns:  # without it campaign rows would go out unchecked
        raise ValueError("the campaign rules need the candidates' trigger column in the decision inputs")
    tagged = inputs.candidates.filter(pl.col("trigger") == TRIGGER).select(
        "candidate_id", pl.col("trigger_ref").alias("campaign")
    )
    if tagged.is_empty():
        return frame
    columns = frame.columns
    work = frame.join(tagged, on="candidate_id", how="left")
    if record:
        _forget_unfinished(engine, tagged["candidate_id"].to_list())
    saved = state.stored(engine, sorted(set(tagged["campaign"])))
    order = sorted(
        set(tagged["campaign"]), key=lambda n: (-(saved[n].campaign.priority if n in saved else 0), n)
    )
    used = state.budget_used(engine, [n for n in order if n in saved], inputs.run_date)
    entries: list[dict] = []
    for name in order:
        stored = saved.get(name)
        mine = (pl.col("campaign") == name) & pl.col("outcome").is_in(LIVE)
        if stored is None:
            work = _set(work, work.filter(mine), outcome=Outcome.REJECTED, reason="unknown_campaign")
            continue
        campaign = stored.campaign
        if not campaign.runs_on(inputs.run_date):
            work = _set(work, work.filter(mine), outcome=Outcome.SUPPRESSED, reason="campaign_not_running")
            continue
        work = _once_per_customer(engine, work, mine, name, inputs.run_date)
        work = _narrow_channels(work, mine, campaign, inputs)
        work, entered = _enter(
            work, work.filter(mine), campaign, stored.paused, used.get(name, (0, 0)), inputs
        )
        entries += entered
    if record:
        _record(engine, entries)
    return work.select(columns)


def _set(work: pl.DataFrame, rows: pl.DataFrame, *, outcome: str, reason: str) -> pl.DataFrame:
    """Give ``rows`` an outcome without a message (no channel, no release)."""
    if rows.is_empty():
        return work
    update = rows.select(
        "candidate_id",
        pl.lit(outcome).alias("outcome"),
        pl.lit(reason).alias("reason"),
        pl.lit(None, dtype=pl.Utf8).alias("channel"),
        (pl.lit("campaign=") + pl.col("campaign")).alias("detail"),
        pl.lit(None, dtype=pl.Utf8).alias("release_at"),
    )
    return _update(work, update)


def _update(work: pl.DataFrame, update: pl.DataFrame) -> pl.DataFrame:
    return work.update(update.select(UPDATE_COLUMNS), on="candidate_id", how="left", include_nulls=True)


def _forget_unfinished(engine: Engine, candidate_ids: list[int]) -> None:
    """Entries left by a run that crashed before its decisions were stored: those candidates are
    being decided again now (decided candidates never reach the engine twice)."""
    with session_scope(engine) as session:
        for start in range(0, len(candidate_ids), 900):
            chunk = candidate_ids[start : start + 900]
            session.execute(delete(CampaignAssignment).where(CampaignAssignment.candidate_id.in_(chunk)))


def _once_per_customer(
    engine: Engine, work: pl.DataFrame, mine: pl.Expr, name: str, day: date
) -> pl.DataFrame:
    rows = work.filter(mine)
    if rows.is_empty():
        return work
    ids = rows["customer_id"].to_list()
    before: set[str] = set()
    with session_scope(engine) as session:
        for start in range(0, len(ids), 900):
            before |= set(
                session.scalars(
                    select(CampaignAssignment.customer_id).where(
                        CampaignAssignment.campaign == name,
                        CampaignAssignment.customer_id.in_(ids[start : start + 900]),
                        CampaignAssignment.assigned_on < day,
                    )
                )
            )
    if not before:
        return work
    return _set(
        work,
        rows.filter(pl.col("customer_id").is_in(list(before))),
        outcome=Outcome.SUPPRESSED,
        reason="campaign_already_assigned",
    )


def _narrow_channels(
    work: pl.DataFrame, mine: pl.Expr, campaign: Campaign, inputs: DayInputs
) -> pl.DataFrame:
    """Decide again, with the campaign's channel list, the rows whose offer allows other channels too."""
    offers = inputs.offers.by_code()
    for offer_code in campaign.offers:
        offer = offers.get(offer_code)
        if offer is None:
            continue
        channels = campaign.channels_for(list(offer.channels))
        rows = work.filter(mine & (pl.col("offer_code") == offer_code))
        if channels == list(offer.channels) or rows.is_empty():
            continue
        ids = rows["candidate_id"]
        others = work.filter(pl.col("outcome").is_in(LIVE) & ~pl.col("candidate_id").is_in(ids.implode()))
        taken = dict(others.group_by("channel").len().iter_rows())
        policy = inputs.offers.policy
        narrowed = inputs.offers.model_copy(
            update={
                "offers": [
                    o.model_copy(update={"channels": channels}) if o.code == offer_code else o
                    for o in inputs.offers.offers
                ],
                "policy": policy.model_copy(
                    update={
                        "capacity": {
                            ch: max(cap - taken.get(ch, 0), 0) for ch, cap in policy.capacity.items()
                        }
                    }
                ),
            }
        )
        again = decide(
            dataclasses.replace(
                inputs,
                offers=narrowed,
                candidates=inputs.candidates.filter(pl.col("candidate_id").is_in(ids.implode())),
            )
        )
        work = _update(work, again)
    return work


def _send_window(campaign: Campaign, channel: str, quiet: dict[str, QuietHours]) -> QuietHours | None:
    """From the campaign's send time to the end of the channel's quiet-hours window (validated to lie
    inside it), so a campaign can only make a message later, never earlier."""
    at = campaign.send_times.get(channel)
    if at is None:
        return None
    window = quiet.get(channel)
    return QuietHours(
        start=at,
        end=window.end if window else time.max,
        working_days_only=window.working_days_only if window else False,
    )


def _enter(
    work: pl.DataFrame,
    rows: pl.DataFrame,
    campaign: Campaign,
    paused: bool,
    used: tuple[int, int],
    inputs: DayInputs,
) -> tuple[pl.DataFrame, list[dict]]:
    """Budget queue, control group, variants and timing for the campaign's eligible rows."""
    if rows.is_empty():
        return work, []
    name = campaign.name
    split = [(v.name, v.percent) for v in campaign.variants]
    limits = []
    if campaign.budget.daily is not None:
        limits.append(campaign.budget.daily - used[0])
    if campaign.budget.total is not None:
        limits.append(campaign.budget.total - used[1])
    room = max(min(limits), 0) if limits else None
    timezone = dict(inputs.customers.select("customer_id", "timezone").iter_rows())
    default_zone = inputs.offers.policy.default_timezone
    quiet = inputs.offers.policy.quiet_hours
    releases: dict[tuple[str, str], str | None] = {}  # one computation per (time zone, channel)
    windows: dict[str, QuietHours | None] = {}

    queue = sorted(
        rows.iter_rows(named=True), key=lambda r: (budget_order(name, r["customer_id"]), r["candidate_id"])
    )
    updates: list[dict] = []
    entries: list[dict] = []
    treated = 0
    for row in queue:
        customer_id = row["customer_id"]
        which = arm(name, customer_id, campaign.holdout)
        if room is not None and treated >= room:
            updates.append(_row(row, Outcome.SUPPRESSED, "campaign_budget", None, f"campaign={name}"))
            continue
        entry = {
            "campaign": name,
            "candidate_id": row["candidate_id"],
            "customer_id": customer_id,
            "offer_code": row["offer_code"],
            "assigned_on": inputs.run_date,
            "arm": which,
            "variant": None,
            "channel": None,
            "template": None,
        }
        entries.append(entry)
        if which == CONTROL:
            entry["channel"] = row["channel"]  # the channel it would have had: per-channel comparisons
            updates.append(
                _row(row, Outcome.SUPPRESSED, "control_group", None, f"campaign={name};arm={CONTROL}")
            )
            continue
        treated += 1
        chosen = variant(name, customer_id, split)
        channel = row["channel"]
        entry.update(variant=chosen, channel=channel, template=campaign.variant_template(chosen, channel))
        outcome, reason = row["outcome"], row["reason"]
        release = row["release_at"] if outcome == Outcome.HELD else None
        if channel not in windows:
            windows[channel] = _send_window(campaign, channel, quiet)
        window = windows[channel]
        if window is not None:
            zone = timezone.get(customer_id) or default_zone
            key = (zone, channel)
            if key not in releases:
                at = release_time(inputs.now, window, zone)
                releases[key] = at.isoformat() if at else None
            release = releases[key]
            outcome, reason = (
                (Outcome.HELD, "campaign_send_time") if release else (Outcome.PLANNED, "planned")
            )
        if paused:
            outcome, reason = Outcome.HELD, "campaign_paused"
        detail = f"campaign={name};arm={TREATMENT};variant={chosen}"
        updates.append(_row(row, outcome, reason, channel, detail, release))
    update = pl.DataFrame(
        updates,
        schema={
            "candidate_id": pl.Int64,
            "outcome": pl.Utf8,
            "reason": pl.Utf8,
            "channel": pl.Utf8,
            "detail": pl.Utf8,
            "release_at": pl.Utf8,
        },
        orient="row",
    )
    return _update(work, update), entries


def _row(
    row: dict, outcome: str, reason: str, channel: str | None, detail: str, release: str | None = None
) -> tuple:
    return (row["candidate_id"], outcome, reason, channel, detail, release)


def _record(engine: Engine, entries: list[dict]) -> None:
    if not entries:
        return
    table = (
        CampaignAssignment.__table__
    )  # Core executemany: the ORM would split rows whose None columns differ
    with session_scope(engine) as session:
        for start in range(0, len(entries), 5000):
            session.execute(insert(table), entries[start : start + 5000])
