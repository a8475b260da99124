"""The decision for one day, as frame operations: every candidate gets exactly one outcome.

Rules run in a fixed order and the first that fails names the reason. Outcomes:
``rejected`` (the candidate cannot be processed: unknown customer or offer), ``suppressed`` (a rule
forbids contact), ``held`` (allowed, but the channel's quiet hours are on: a release time is
recorded) and ``planned`` (a message will be written to the ledger).
"""

from __future__ import annotations

import polars as pl

from outreach.config import CHANNEL_SCOPE
from outreach.policy.inputs import DayInputs
from outreach.policy.windows import release_time

# The stable set of reason codes, shown in the funnel, exports and `explain`.
REASONS: dict[str, str] = {
    "planned": "eligible and planned for sending",
    "quiet_hours_held": "held until the channel's sending window opens in the customer's time zone",
    "unknown_customer": "the candidate names a customer that is not in the customer table",
    "unknown_offer": "the candidate names an offer that is not in offers.yaml",
    "offer_not_valid": "the offer is not valid on this date",
    "opted_out_global": "the customer opted out of all personalised offers",
    "opted_out_topic": "the customer opted out of offers on this topic",
    "opted_out_channel": "the customer opted out of every channel this offer may use",
    "suppressed_vulnerable": "on the vulnerable-customer suppression list",
    "suppressed_arrears": "in arrears / debt collection",
    "suppressed_deceased": "deceased",
    "suppressed_minor": "a minor",
    "suppressed_complaint": "an open complaint",
    "suppressed_other": "on a suppression list",
    "holds_product": "already holds the offered product",
    "cap_7d": "contact cap: already contacted within the last 7 days",
    "cap_30d": "contact cap: reached the maximum contacts in 30 days",
    "cooldown_offer": "the same offer was sent within its cooldown period",
    "no_valid_contact": "no valid contact data for any channel this offer may use",
    "lost_arbitration": "another offer for this customer ranked higher today",
    "over_capacity": "the channel's daily capacity went to better-ranked candidates",
    # campaign rules, applied after the engine by outreach/campaigns/seam.py (they only narrow)
    "control_group": "in the campaign's control group: eligible, deliberately not contacted",
    "campaign_budget": "the campaign's daily or total budget went to others in its (random) queue",
    "campaign_paused": "held: the campaign is paused; sent when it is resumed",
    "campaign_send_time": "held until the campaign's send time for the channel in the customer's zone",
    "campaign_already_assigned": "entered this campaign on an earlier day (once per customer)",
    "campaign_not_running": "the campaign is a draft or outside its window on this date",
    "unknown_campaign": "the candidate names a campaign that was never synced from campaigns/",
}

OUTPUT_SCHEMA = {
    "candidate_id": pl.Int64,
    "customer_id": pl.Utf8,
    "offer_code": pl.Utf8,
    "outcome": pl.Utf8,
    "reason": pl.Utf8,
    "channel": pl.Utf8,
    "legal_basis": pl.Utf8,
    "detail": pl.Utf8,
}
CONTACT_FLAG = {
    "sms": "mobile_valid",
    "call": "mobile_valid",
    "email": "email_valid",
    "letter": "address_valid",
}


def _offers_frame(inputs: DayInputs) -> pl.DataFrame:
    policy = inputs.offers.policy
    return pl.DataFrame(
        [
            {
                "offer_code": o.code,
                "product": o.product,
                "topic": o.topic,
                "priority": o.priority,
                "offer_valid": o.valid_on(inputs.run_date),
                "cooldown_days": o.cooldown_days if o.cooldown_days is not None else policy.cooldown_days,
                "channels": list(o.channels),
                "legal_basis": o.legal_basis,
            }
            for o in inputs.offers.offers
        ]
    )


def _consent_flags(inputs: DayInputs) -> pl.DataFrame:
    """One row per customer: the latest choice per channel scope and for all offers."""
    scopes = ["all", *sorted(set(CHANNEL_SCOPE.values()))]
    wide = inputs.consent.filter(pl.col("scope").is_in(scopes)).pivot(
        on="scope", index="customer_id", values="choice", aggregate_function="first"
    )
    for scope in scopes:
        if scope not in wide.columns:
            wide = wide.with_columns(pl.lit(None, dtype=pl.Utf8).alias(scope))
    return wide.select("customer_id", *[pl.col(s).alias(f"consent_{s}") for s in scopes])


def _channel_choice(frame: pl.DataFrame, inputs: DayInputs) -> pl.DataFrame:
    """The first channel, in the offer's order, that consent and contact data both allow."""
    opt_in = set(inputs.offers.policy.opt_in_channels)
    exploded = (
        frame.select(
            "candidate_id",
            "channels",
            *[c for c in frame.columns if c.startswith("consent_")],
            "mobile_valid",
            "email_valid",
            "address_valid",
        )
        .with_columns(pl.int_ranges(pl.col("channels").list.len()).alias("position"))
        .explode("channels", "position")
        .rename({"channels": "channel"})
    )
    consent_ok = pl.lit(False)
    contact_ok = pl.lit(False)
    for channel, scope in CHANNEL_SCOPE.items():
        choice = pl.col(f"consent_{scope}")
        allowed = (choice == "opt_in") if channel in opt_in else choice.is_null() | (choice == "opt_in")
        consent_ok = pl.when(pl.col("channel") == channel).then(allowed).otherwise(consent_ok)
        contact_ok = (
            pl.when(pl.col("channel") == channel)
            .then(pl.col(CONTACT_FLAG[channel]).fill_null(False))
            .otherwise(contact_ok)
        )
    exploded = exploded.with_columns(consent_ok=consent_ok, contact_ok=contact_ok)
    return exploded.group_by("candidate_id").agg(
        pl.col("channel")
        .filter(pl.col("consent_ok") & pl.col("contact_ok"))
        .sort_by(pl.col("position").filter(pl.col("consent_ok") & pl.col("contact_ok")))
        .first()
        .alias("chosen_channel"),
        pl.col("consent_ok").any().alias("any_consent"),
    )


def _history_flags(frame: pl.DataFrame, inputs: DayInputs) -> pl.DataFrame:
    caps = inputs.offers.policy.caps
    day = inputs.run_date
    contacts = inputs.contacts.with_columns(age=(pl.lit(day) - pl.col("sent_date")).dt.total_days())
    per_customer = contacts.group_by("customer_id").agg(
        (pl.col("age") <= 7).sum().alias("sent_7d"),
        (pl.col("age") <= 30).sum().alias("sent_30d"),
    )
    last_offer = contacts.group_by("customer_id", "offer_code").agg(pl.col("age").min().alias("offer_age"))
    return (
        frame.join(per_customer, on="customer_id", how="left")
        .join(last_offer, on=["customer_id", "offer_code"], how="left")
        .with_columns(
            cap_7d=pl.col("sent_7d").fill_null(0) >= caps.per_7_days,
            cap_30d=pl.col("sent_30d").fill_null(0) >= caps.per_30_days,
            cooldown=pl.col("offer_age").is_not_null() & (pl.col("offer_age") <= pl.col("cooldown_days")),
        )
    )


def decide(inputs: DayInputs) -> pl.DataFrame:
    """One row per candidate with its outcome, reason and (for planned/held) channel."""
    if inputs.candidates.is_empty():
        return pl.DataFrame(schema=OUTPUT_SCHEMA)
    customers = inputs.customers.with_columns(customer_known=pl.lit(True))
    offers = _offers_frame(inputs).with_columns(offer_known=pl.lit(True))
    suppressed = inputs.suppressions.group_by("customer_id").agg(
        pl.col("reason").sort().first().alias("suppression")
    )
    topic_out = (
        inputs.consent.filter(pl.col("scope").str.starts_with("topic:") & (pl.col("choice") == "opt_out"))
        .select("customer_id", pl.col("scope").str.strip_prefix("topic:").alias("topic"))
        .with_columns(topic_opted_out=pl.lit(True))
    )
    holdings = inputs.holdings.unique().with_columns(holds=pl.lit(True))

    frame = (
        inputs.candidates.join(customers, on="customer_id", how="left")
        .join(offers, on="offer_code", how="left")
        .join(_consent_flags(inputs), on="customer_id", how="left")
        .join(suppressed, on="customer_id", how="left")
        .join(topic_out, on=["customer_id", "topic"], how="left")
        .join(holdings, on=["customer_id", "product"], how="left")
    )
    frame = _history_flags(frame, inputs)
    frame = frame.join(
        _channel_choice(frame.filter(pl.col("offer_known").is_not_null()), inputs),
        on="candidate_id",
        how="left",
    )

    reason = (
        pl.when(pl.col("customer_known").is_null())
        .then(pl.lit("unknown_customer"))
        .when(pl.col("offer_known").is_null())
        .then(pl.lit("unknown_offer"))
        .when(~pl.col("offer_valid"))
        .then(pl.lit("offer_not_valid"))
        .when(pl.col("consent_all") == "opt_out")
        .then(pl.lit("opted_out_global"))
        .when(pl.col("suppression").is_not_null())
        .then(pl.lit("suppressed_") + pl.col("suppression"))
        .when(pl.col("topic_opted_out").is_not_null())
        .then(pl.lit("opted_out_topic"))
        .when(pl.col("holds").is_not_null())
        .then(pl.lit("holds_product"))
        .when(pl.col("cap_7d"))
        .then(pl.lit("cap_7d"))
        .when(pl.col("cap_30d"))
        .then(pl.lit("cap_30d"))
        .when(pl.col("cooldown"))
        .then(pl.lit("cooldown_offer"))
        .when(pl.col("chosen_channel").is_null() & ~pl.col("any_consent").fill_null(False))
        .then(pl.lit("opted_out_channel"))
        .when(pl.col("chosen_channel").is_null())
        .then(pl.lit("no_valid_contact"))
    )
    frame = frame.with_columns(reason=reason, rank_value=pl.col("priority") * pl.col("score"))
    frame = _arbitrate(frame)
    frame = _apply_capacity(frame, inputs)
    frame = _apply_windows(frame, inputs)
    outcome = (
        pl.when(pl.col("reason").is_in(["unknown_customer", "unknown_offer"]))
        .then(pl.lit("rejected"))
        .when(pl.col("reason") == "quiet_hours_held")
        .then(pl.lit("held"))
        .when(pl.col("reason").is_null())
        .then(pl.lit("planned"))
        .otherwise(pl.lit("suppressed"))
    )
    return (
        frame.with_columns(
            outcome=outcome,
            reason=pl.col("reason").fill_null("planned"),
            channel=pl.when(pl.col("reason").is_null() | (pl.col("reason") == "quiet_hours_held")).then(
                pl.col("chosen_channel")
            ),
        )
        .select(list(OUTPUT_SCHEMA))
        .cast(OUTPUT_SCHEMA)
        .sort("candidate_id")
    )


def _arbitrate(frame: pl.DataFrame) -> pl.DataFrame:
    """At most one offer per customer per day: highest priority × score, ties by offer code then id."""
    ranked = (
        frame.filter(pl.col("reason").is_null())
        .sort(["rank_value", "offer_code", "candidate_id"], descending=[True, False, False])
        .with_columns(customer_rank=pl.int_range(pl.len()).over("customer_id"))
        .select("candidate_id", "customer_rank")
    )
    return frame.join(ranked, on="candidate_id", how="left").with_columns(
        reason=pl.when(pl.col("customer_rank") > 0)
        .then(pl.lit("lost_arbitration"))
        .otherwise(pl.col("reason"))
    )


def _apply_capacity(frame: pl.DataFrame, inputs: DayInputs) -> pl.DataFrame:
    """Channel capacity goes to the best-ranked candidates of the whole day, not first come."""
    capacity = inputs.offers.policy.capacity
    if not capacity:
        return frame
    ranked = (
        frame.filter(pl.col("reason").is_null())
        .sort(["rank_value", "candidate_id"], descending=[True, False])
        .with_columns(channel_rank=pl.int_range(pl.len()).over("chosen_channel"))
        .select("candidate_id", "channel_rank")
    )
    limits = pl.DataFrame({"chosen_channel": list(capacity), "channel_capacity": list(capacity.values())})
    frame = frame.join(ranked, on="candidate_id", how="left").join(limits, on="chosen_channel", how="left")
    over = pl.col("channel_capacity").is_not_null() & (pl.col("channel_rank") >= pl.col("channel_capacity"))
    return frame.with_columns(
        reason=pl.when(pl.col("reason").is_null() & over)
        .then(pl.lit("over_capacity"))
        .otherwise(pl.col("reason"))
    )


def _apply_windows(frame: pl.DataFrame, inputs: DayInputs) -> pl.DataFrame:
    """Hold what falls in quiet hours; one window computation per (time zone, channel), not per row."""
    windows = inputs.offers.policy.quiet_hours
    live = frame.filter(pl.col("reason").is_null() & pl.col("chosen_channel").is_in(list(windows)))
    pairs = live.select("timezone", "chosen_channel").unique().rows()
    releases = [
        (tz, channel, release_time(inputs.now, windows[channel], tz or inputs.offers.policy.default_timezone))
        for tz, channel in pairs
    ]
    held = pl.DataFrame(
        [(tz, ch, f"release={at.isoformat()}") for tz, ch, at in releases if at is not None],
        schema={"timezone": pl.Utf8, "chosen_channel": pl.Utf8, "detail": pl.Utf8},
        orient="row",
    )
    frame = frame.join(held, on=["timezone", "chosen_channel"], how="left")
    return frame.with_columns(
        reason=pl.when(pl.col("reason").is_null() & pl.col("detail").is_not_null())
        .then(pl.lit("quiet_hours_held"))
        .otherwise(pl.col("reason")),
        detail=pl.when(pl.col("reason").is_null()).then(pl.col("detail")),
    )
