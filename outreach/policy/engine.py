"""The decision for one day, as frame operations: every candidate gets exactly one outcome.

Why Polars: the rules are joins and group-bys over a day's candidates and their customers'
history; a columnar engine does them for a million candidates in a few CPU seconds
(bench/results/policy.md), the same code runs whichever database the inputs came from, and the
rules read as one expression each. (SQL in the database would need two dialects, and SQLite has
no parallel hash joins.)

Rules run in the fixed order of ``RULES``; the first that fails names the reason. Outcomes:
``rejected`` (bad input: unknown customer or offer, unknown time zone), ``suppressed`` (a rule
forbids contact today), ``held`` (allowed, but the channel's quiet hours are on: the release time
is in ``release_at``, ISO UTC) and ``planned`` (a message goes to the ledger).

Day-level steps after the per-candidate rules:
- arbitration: one offer per customer per day, highest priority × score first, ties by offer
  code then candidate id;
- capacity: each capped channel's daily capacity goes to the best candidates of the whole day
  (priority × score, then candidate id); a candidate that does not fit moves to the next channel
  its offer allows (and consent, contact data and channel caps allow) — computed as a
  candidate-proposing deferred acceptance, which with one ranking for every channel gives exactly
  "best first, each takes its first channel with room" — and is ``over_capacity`` when none has room;
- sending windows: quiet hours per channel in the customer's own time zone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl

from outreach.config import CHANNEL_SCOPE
from outreach.policy.inputs import NOT_CONTACTS, DayInputs
from outreach.policy.windows import release_time
from outreach.statuses import Outcome

# The stable set of reason codes, shown in the funnel, exports and `explain` (docs/reason-codes.md).
REASONS: dict[str, str] = {
    "planned": "eligible and planned for sending",
    "quiet_hours_held": "held until the channel's sending window opens in the customer's time zone",
    "unknown_customer": "the candidate names a customer that is not in the customer table",
    "unknown_offer": "the candidate names an offer that is not in offers.yaml",
    "invalid_timezone": "the customer's time zone is not a known IANA zone, so quiet hours cannot be applied",
    "offer_not_valid": "the offer is not valid on this date",
    "opted_out_global": "the customer opted out of all personalised offers",
    "suppressed_deceased": "on the deceased suppression list",
    "suppressed_minor": "on the minor suppression list",
    "suppressed_vulnerable": "on the vulnerable-customer suppression list",
    "suppressed_arrears": "in arrears / debt collection (suppression list)",
    "suppressed_complaint": "an open complaint (suppression list)",
    "suppressed_other": "on another suppression list",
    "opted_out_topic": "the customer opted out of offers on this topic",
    "no_consent": "the offer needs the customer's explicit opt-in on its topic, and there is none",
    "holds_product": "already holds the offered product",
    "not_interested_topic": "said 'not interested' to this topic too often recently (outcome rule)",
    "contacted_today": "the customer already has an offer planned or sent today",
    "cap_7d": "contact cap: the maximum contacts in 7 days is reached",
    "cap_30d": "contact cap: the maximum contacts in 30 days is reached",
    "cooldown_offer": "the same offer was sent within its cooldown period",
    "opted_out_channel": "the customer opted out of every channel this offer may use",
    "no_valid_contact": "no valid contact data for any channel this offer may use and consent allows",
    "cap_channel": "every channel still allowed has reached its per-channel contact cap",
    "lost_arbitration": "another offer for this customer ranked higher today",
    "over_capacity": "every allowed channel's daily capacity went to better-ranked candidates",
    # campaign rules, applied after the engine by outreach/campaigns/seam.py (they only narrow)
    "control_group": "in the campaign's control group: eligible, deliberately not contacted",
    "campaign_budget": "the campaign's daily or total budget went to others in its (random) queue",
    "campaign_paused": "held: the campaign is paused; sent when it is resumed",
    "campaign_send_time": "held until the campaign's send time for the channel in the customer's zone",
    "campaign_already_assigned": "entered this campaign on an earlier day (once per customer)",
    "campaign_not_running": "the campaign is a draft or outside its window on this date",
    "unknown_campaign": "the candidate names a campaign that was never synced from campaigns/",
    # the live lane, applied by outreach/live/decide.py (they only narrow)
    "offer_expired": "quiet hours would hold the message past its payment event's relevance window",
    "event_too_old": "the payment event arrived after its trigger's relevance window had passed",
}
SUPPRESSION_ORDER = ["deceased", "minor", "vulnerable", "arrears", "complaint"]  # most severe first
REJECTED = ("unknown_customer", "unknown_offer", "invalid_timezone")


@dataclass(frozen=True)
class Rule:
    code: str  # the reason code when this rule fails
    question: str  # what the rule asks, in plain language
    fails: str  # boolean column of the evaluated frame: True when the rule fails


# The order in which rules are applied; ``explain`` prints them in this order.
RULES: list[Rule] = [
    Rule("unknown_customer", "Is the customer known?", "f_unknown_customer"),
    Rule("unknown_offer", "Is the offer defined in offers.yaml?", "f_unknown_offer"),
    Rule("offer_not_valid", "Is the offer valid on this date?", "f_offer_not_valid"),
    Rule("opted_out_global", "Has the customer not opted out of all personalised offers?", "f_global"),
    Rule("suppressed_*", "Is the customer on no suppression list that covers this offer?", "f_suppressed"),
    Rule("opted_out_topic", "Has the customer not opted out of this offer's topic?", "f_topic"),
    Rule("no_consent", "If the offer needs consent: has the customer opted in to its topic?", "f_no_consent"),
    Rule("holds_product", "Does the customer not already hold the product?", "f_holds"),
    Rule(
        "not_interested_topic", "Has the customer not repeatedly said 'not interested' to this topic?", "f_ni"
    ),
    Rule("contacted_today", "Has the customer no other offer planned or sent today?", "f_today"),
    Rule("cap_7d", "Is the customer under the 7-day contact cap?", "f_cap_7d"),
    Rule("cap_30d", "Is the customer under the 30-day contact cap?", "f_cap_30d"),
    Rule("cooldown_offer", "Was this offer not sent to the customer within its cooldown?", "f_cooldown"),
    Rule(
        "opted_out_channel|no_valid_contact|cap_channel",
        "Is at least one of the offer's channels allowed (consent, valid contact data, per-channel cap)?",
        "f_channel",
    ),
    Rule("lost_arbitration", "Is this the customer's best-ranked eligible offer today?", "f_arbitration"),
    Rule("over_capacity", "Is there room in the daily capacity of an allowed channel?", "f_capacity"),
    Rule(
        "invalid_timezone|quiet_hours_held",
        "Is the channel's sending window open now in the customer's "
        "time zone? (if not, the message is held, not dropped)",
        "f_window",
    ),
]

OUTPUT_SCHEMA = {
    "candidate_id": pl.Int64,
    "customer_id": pl.Utf8,
    "offer_code": pl.Utf8,
    "outcome": pl.Utf8,
    "reason": pl.Utf8,
    "channel": pl.Utf8,
    "legal_basis": pl.Utf8,
    "detail": pl.Utf8,
    "release_at": pl.Utf8,  # held only: ISO UTC, when the sending window opens
}
CONTACT_FLAG = {
    "sms": "mobile_valid",
    "call": "mobile_valid",
    "email": "email_valid",
    "letter": "address_valid",
}
SCOPES = ["all", *sorted(set(CHANNEL_SCOPE.values()))]


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


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
                "offer_basis": o.legal_basis,
                "code_order": sorted(x.code for x in inputs.offers.offers).index(o.code),
            }
            for o in inputs.offers.offers
        ],
        schema={
            "offer_code": pl.Utf8,
            "product": pl.Utf8,
            "topic": pl.Utf8,
            "priority": pl.Int64,
            "offer_valid": pl.Boolean,
            "cooldown_days": pl.Int64,
            "channels": pl.List(pl.Utf8),
            "offer_basis": pl.Utf8,
            "code_order": pl.Int32,  # the offer code's place in sort order: a cheap tie-breaker
        },
    )


def latest_consent(consent: pl.DataFrame) -> pl.DataFrame:
    """The latest event per (customer, scope): later ``recorded_at`` wins, then the later event id."""
    return (
        consent.lazy()
        .group_by("customer_id", "scope")
        .agg(pl.col("choice").sort_by("recorded_at", "event_id").last())
        .collect()
    )


def _not_interested(inputs: DayInputs, offers: pl.DataFrame) -> pl.DataFrame:
    """(customer, topic) pairs the outcome rule suppresses on the run date, with the end date."""
    policy = inputs.offers.policy
    answers = inputs.answers.filter(pl.col("occurred_at") <= _utc(inputs.now)).join(
        offers.select("offer_code", "topic"), on="offer_code", how="inner"
    )
    if answers.is_empty():
        return pl.DataFrame(schema={"customer_id": pl.Utf8, "topic": pl.Utf8, "ni_until": pl.Date})
    counted = (
        answers.sort("customer_id", "topic", "occurred_at")
        .rolling(
            index_column="occurred_at",
            period=f"{policy.not_interested_window_days}d",
            group_by=["customer_id", "topic"],
        )
        .agg(pl.len().alias("n"))
    )
    return (
        counted.filter(pl.col("n") >= policy.not_interested_limit)
        .group_by("customer_id", "topic")
        .agg(pl.col("occurred_at").max().dt.date().alias("trigger_day"))
        .with_columns(ni_until=pl.col("trigger_day") + pl.duration(days=policy.not_interested_suppress_days))
        .filter(pl.col("ni_until") > inputs.run_date)
        .select("customer_id", "topic", pl.col("ni_until").cast(pl.Date))
    )


def _contacts(inputs: DayInputs) -> pl.DataFrame:
    """Counted contacts of the history window, with their age in days (0 = the run date)."""
    return (
        inputs.contacts.filter(~pl.col("status").is_in(list(NOT_CONTACTS)))
        .with_columns(age=(pl.lit(inputs.run_date) - pl.col("sent_date")).dt.total_days())
        .filter(pl.col("age") >= 0)
    )


def _facts(inputs: DayInputs, offers: pl.DataFrame) -> pl.LazyFrame:
    """One row per customer with everything the rules need: contact data, consent, history flags.

    Each source computes its own flag columns, the pieces are stacked and grouped once with simple
    aggregations (any, sum, max): one hash pass over the customers instead of a join per table
    against the day's candidates. Per-topic, per-product and per-offer facts become one boolean
    column each (``_fact_names``), which the candidate rows pick from by their own topic/product.
    """
    policy = inputs.offers.policy
    caps = policy.caps
    names = _fact_names(inputs)
    cooldowns = dict(zip(offers["offer_code"], offers["cooldown_days"], strict=True))
    contacts = _contacts(inputs).lazy()
    age = pl.col("age")
    cool = pl.col("offer_code").replace_strict(cooldowns, default=policy.cooldown_days, return_dtype=pl.Int64)
    scope, choice = pl.col("scope"), pl.col("choice")
    consent_flags = {}
    for topic, (out_col, in_col, _) in names["topic"].items():
        consent_flags[out_col] = (scope == f"topic:{topic}") & (choice == "opt_out")
        consent_flags[in_col] = (scope == f"topic:{topic}") & (choice == "opt_in")
    configured = list(policy.suppression_scopes)
    active = inputs.suppressions.lazy().filter(
        (pl.col("valid_from") <= inputs.run_date)
        & (pl.col("valid_until").is_null() | (pl.col("valid_until") >= inputs.run_date))
    )
    per_channel = {
        f"ch{days}_{c}": (pl.col("channel") == c) & (age < days)
        for days, limits in ((7, caps.per_channel_7_days), (30, caps.per_channel_30_days))
        for c in sorted(limits)
    }
    pieces = [
        inputs.customers.lazy().select(
            "customer_id",
            "mobile_valid",
            "email_valid",
            "address_valid",
            "timezone",
            customer_known=pl.lit(True),
        ),
        latest_consent(inputs.consent.filter(pl.col("recorded_at") <= _utc(inputs.now)))
        .lazy()
        .select(
            "customer_id",
            *[pl.when(scope == s).then(choice).alias(f"consent_{s}") for s in SCOPES],
            **consent_flags,
        ),
        inputs.holdings.lazy().select(
            "customer_id", **{col: pl.col("product") == p for p, col in names["product"].items()}
        ),
        contacts.select(
            "customer_id",
            contacted_today=age == 0,
            sent_7d=(age < 7).cast(pl.Int32),
            sent_30d=(age < 30).cast(pl.Int32),
            **{name: expr.cast(pl.Int32) for name, expr in per_channel.items()},
            **{col: (pl.col("offer_code") == code) & (age < cool) for code, col in names["offer"].items()},
        ),
        _not_interested(inputs, offers)
        .lazy()
        .select("customer_id", **{c[2]: pl.col("topic") == t for t, c in names["topic"].items()}),
        active.select(
            "customer_id",
            **{
                col: (pl.col("reason") == reason) if reason != OTHER else ~pl.col("reason").is_in(configured)
                for reason, col in names["suppression"].items()
            },
        ),
    ]
    stacked = pl.concat(pieces, how="diagonal_relaxed")
    schema = stacked.collect_schema()
    aggs = []
    for name, dtype in schema.items():
        if name == "customer_id":
            continue
        if dtype == pl.Boolean:
            aggs.append(pl.col(name).any(ignore_nulls=True))
        elif dtype == pl.Int32:
            aggs.append(pl.col(name).sum())
        else:
            aggs.append(pl.col(name).max())
    return stacked.group_by("customer_id").agg(aggs)


OTHER = "__other__"


def _fact_names(inputs: DayInputs) -> dict[str, dict]:
    """Column names of the per-customer flags for each topic, product, offer and suppression list."""
    offers = inputs.offers.offers
    topics = sorted({o.topic for o in offers})
    products = sorted({o.product for o in offers})
    reasons = [*inputs.offers.policy.suppression_scopes, OTHER]
    return {
        "topic": {t: (f"topic_out_{i}", f"topic_in_{i}", f"ni_{i}") for i, t in enumerate(topics)},
        "product": {p: f"held_{i}" for i, p in enumerate(products)},
        "offer": {o.code: f"cooling_{i}" for i, o in enumerate(offers)},
        "suppression": {r: f"supp_{i}" for i, r in enumerate(reasons)},
    }


def _pick(key: str, columns: dict[str, str]) -> pl.Expr:
    """The flag column chosen by each row's ``key`` value (False when no customer facts exist)."""
    expr = pl.lit(False)
    for value, column in columns.items():
        expr = pl.when(pl.col(key) == value).then(pl.col(column).fill_null(False)).otherwise(expr)
    return expr


def suppression_precedence(scopes: Iterable[str]) -> list[str]:
    """The configured suppression lists, most severe first: the known ones in SUPPRESSION_ORDER,
    then the others by name. Which list a suppressed candidate is reported under."""
    configured = set(scopes)
    return [r for r in SUPPRESSION_ORDER if r in configured] + sorted(configured - set(SUPPRESSION_ORDER))


def _suppression_expr(inputs: DayInputs) -> pl.Expr:
    """The most severe active suppression whose scope covers the offer's topic (null: none)."""
    policy = inputs.offers.policy
    columns = _fact_names(inputs)["suppression"]
    order = suppression_precedence(policy.suppression_scopes)
    # a list the policy file does not name blocks everything, reported as "other"
    result = pl.when(pl.col(columns[OTHER]).fill_null(False)).then(pl.lit("other")).otherwise(None)
    for reason in reversed(order):
        scope = policy.suppression_scopes[reason]
        covers = pl.col(columns[reason]).fill_null(False)
        if scope != "all":
            covers = covers & pl.col("topic").is_in(list(scope))
        code = reason if reason in SUPPRESSION_ORDER else "other"
        result = pl.when(covers).then(pl.lit(code)).otherwise(result)
    return result


# channel status codes, worst last: the first channel with OK is used
OK, CAP, NO_CONTACT, OPTED_OUT = 0, 1, 2, 3
STATUS_NAMES = {
    OK: "allowed",
    CAP: "per-channel cap reached",
    NO_CONTACT: "no valid contact data",
    OPTED_OUT: "opted out",
}
MAX_CHANNELS = len(CHANNEL_SCOPE)


def _channel_status(inputs: DayInputs) -> list[pl.Expr]:
    """``st_<channel>``: may this customer be contacted on that channel today (consent, contact data, cap)?"""
    policy = inputs.offers.policy
    caps = policy.caps
    exprs = []
    for channel, scope in CHANNEL_SCOPE.items():
        choice = pl.col(f"consent_{scope}")
        if channel in policy.opt_in_channels:
            consent_ok = (choice == "opt_in").fill_null(False)
        else:
            consent_ok = choice.is_null() | (choice == "opt_in")
        cap_hit = pl.lit(False)
        for days, limits in ((7, caps.per_channel_7_days), (30, caps.per_channel_30_days)):
            if channel in limits:
                cap_hit = cap_hit | (pl.col(f"ch{days}_{channel}").fill_null(0) >= limits[channel])
        exprs.append(
            pl.when(~consent_ok)
            .then(pl.lit(OPTED_OUT))
            .when(~pl.col(CONTACT_FLAG[channel]).fill_null(False))
            .then(pl.lit(NO_CONTACT))
            .when(cap_hit)
            .then(pl.lit(CAP))
            .otherwise(pl.lit(OK))
            .cast(pl.Int8)
            .alias(f"st_{channel}")
        )
    return exprs


def _channel_positions() -> list[pl.Expr]:
    """Per position k of the offer's channel list: ``ch_k`` and its status ``stat_k``."""
    out = []
    for k in range(MAX_CHANNELS):
        ch = pl.col("channels").list.get(k, null_on_oob=True)
        stat = pl.lit(None, dtype=pl.Int8)
        for channel in CHANNEL_SCOPE:
            stat = pl.when(ch == channel).then(pl.col(f"st_{channel}")).otherwise(stat)
        out += [ch.alias(f"ch_{k}"), stat.alias(f"stat_{k}")]
    return out


def _allowed_positions() -> list[pl.Expr]:
    """``a_j``: the j-th allowed channel in the offer's order (null past the last), without list ops."""
    ok = [(pl.col(f"stat_{k}") == OK).fill_null(False) for k in range(MAX_CHANNELS)]
    rank = []  # how many allowed channels up to and including position k
    running = pl.lit(0)
    for k in range(MAX_CHANNELS):
        running = running + ok[k].cast(pl.Int8)
        rank.append(running)
    out = []
    for j in range(MAX_CHANNELS):
        pick = pl.lit(None, dtype=pl.Utf8)
        for k in reversed(range(MAX_CHANNELS)):
            pick = pl.when(ok[k] & (rank[k] == j + 1)).then(pl.col(f"ch_{k}")).otherwise(pick)
        out.append(pick.alias(f"a_{j}"))
    stats = [pl.col(f"stat_{k}") for k in range(MAX_CHANNELS)]
    out += [
        pl.any_horizontal([st < OPTED_OUT for st in stats]).fill_null(False).alias("any_consent"),
        pl.any_horizontal([st <= CAP for st in stats]).fill_null(False).alias("any_contact"),
    ]
    return out


def evaluate(inputs: DayInputs, *, full: bool = False) -> pl.DataFrame:
    """Every candidate with the reason and outcome; with ``full`` also every rule's result (``f_*``).

    ``decide`` keeps the public columns; ``explain`` asks for ``full``. The per-candidate rules run
    as one lazy query, so Polars only materialises the columns the result needs.
    """
    policy = inputs.offers.policy
    offers_frame = _offers_frame(inputs)
    people = _facts(inputs, offers_frame)
    names = _fact_names(inputs)
    topics = names["topic"]
    lf = (
        inputs.candidates.lazy()
        .with_columns(pl.col("score").fill_null(0.0))
        .join(offers_frame.lazy().with_columns(offer_known=pl.lit(True)), on="offer_code", how="left")
        .join(people, on="customer_id", how="left")
        .with_columns(_channel_status(inputs))
        .with_columns(_channel_positions())
        .with_columns(_allowed_positions())
        .with_columns(suppression=_suppression_expr(inputs))
        .with_columns(
            f_unknown_customer=~pl.col("customer_known").fill_null(False),
            f_unknown_offer=pl.col("offer_known").is_null(),
            f_offer_not_valid=~pl.col("offer_valid"),
            f_global=pl.col("consent_all") == "opt_out",
            f_suppressed=pl.col("suppression").is_not_null(),
            f_topic=_pick("topic", {t: c[0] for t, c in topics.items()}),
            f_no_consent=(pl.col("offer_basis") == "consent")
            & ~_pick("topic", {t: c[1] for t, c in topics.items()}),
            f_holds=_pick("product", names["product"]),
            f_ni=_pick("topic", {t: c[2] for t, c in topics.items()}),
            f_today=pl.col("contacted_today").fill_null(False),
            f_cap_7d=pl.col("sent_7d").fill_null(0) >= policy.caps.per_7_days,
            f_cap_30d=pl.col("sent_30d").fill_null(0) >= policy.caps.per_30_days,
            f_cooldown=_pick("offer_code", names["offer"]),
            f_channel=pl.col("a_0").is_null(),
        )
        .with_columns([pl.col(r.fails).fill_null(False) for r in RULES[:14]])
    )
    suppressed_code = pl.lit("suppressed_") + pl.col("suppression")
    channel_code = (
        pl.when(~pl.col("any_consent"))
        .then(pl.lit("opted_out_channel"))
        .when(~pl.col("any_contact"))
        .then(pl.lit("no_valid_contact"))
        .otherwise(pl.lit("cap_channel"))
    )
    reason = pl.lit(None, dtype=pl.Utf8)
    for rule in reversed(RULES[:14]):  # built back to front so the first failing rule wins
        code = {"suppressed_*": suppressed_code, RULES[13].code: channel_code}.get(
            rule.code, pl.lit(rule.code)
        )
        reason = pl.when(pl.col(rule.fails)).then(code).otherwise(reason)
    lf = lf.with_columns(reason=reason, rank_value=pl.col("priority") * pl.col("score"))
    if not full:
        allowed = [f"a_{j}" for j in range(MAX_CHANNELS)]
        keep = ["candidate_id", "customer_id", "offer_code", "code_order", "reason", "rank_value", *allowed]
        keep.append("timezone")
        lf = lf.select(*keep, "offer_basis")
    frame = lf.collect()
    day = _day_level(frame.filter(pl.col("reason").is_null()), inputs)
    frame = frame.join(day, on="candidate_id", how="left").with_columns(
        reason=pl.coalesce("day_reason", "reason"),
        f_arbitration=pl.col("f_arbitration").fill_null(False),
        f_capacity=pl.col("f_capacity").fill_null(False),
        f_window=pl.col("f_window").fill_null(False),
    )
    basis = (
        pl.when(pl.col("chosen_channel").is_in(list(policy.opt_in_channels)))
        .then(pl.lit("consent"))
        .otherwise(pl.col("offer_basis"))
    )
    outcome = (
        pl.when(pl.col("reason").is_in(list(REJECTED)))
        .then(pl.lit(Outcome.REJECTED))
        .when(pl.col("reason") == "quiet_hours_held")
        .then(pl.lit(Outcome.HELD))
        .when(pl.col("reason").is_null())
        .then(pl.lit(Outcome.PLANNED))
        .otherwise(pl.lit(Outcome.SUPPRESSED))
    )
    live = pl.col("reason").is_null() | (pl.col("reason") == "quiet_hours_held")
    return frame.with_columns(
        outcome=outcome,
        reason=pl.col("reason").fill_null("planned"),
        channel=pl.when(live).then(pl.col("chosen_channel")),
        legal_basis=basis,
    ).sort("candidate_id")


def _day_level(live: pl.DataFrame, inputs: DayInputs) -> pl.DataFrame:
    """Arbitration, capacity and windows over the candidates every per-candidate rule let through.

    Returns per candidate: ``day_reason`` (null: planned), ``chosen_channel``, ``detail``,
    ``release_at`` and the three rule flags.
    """
    policy = inputs.offers.policy
    frame = _arbitrate(live)
    winners = frame.filter(~pl.col("f_arbitration"))
    winners = _apply_windows(_apply_capacity(winners, policy.capacity), inputs)
    return (
        frame.select("candidate_id", "f_arbitration")
        .join(
            winners.select(
                "candidate_id",
                "chosen_channel",
                "detail",
                "release_at",
                "f_capacity",
                "f_window",
                day_reason="reason",
            ),
            on="candidate_id",
            how="left",
        )
        .with_columns(
            day_reason=pl.when(pl.col("f_arbitration"))
            .then(pl.lit("lost_arbitration"))
            .otherwise("day_reason")
        )
    )


def decide(inputs: DayInputs) -> pl.DataFrame:
    """One row per candidate with its outcome, reason and (for planned/held) channel."""
    if inputs.candidates.is_empty():
        return pl.DataFrame(schema=OUTPUT_SCHEMA)
    return evaluate(inputs).select(list(OUTPUT_SCHEMA)).cast(OUTPUT_SCHEMA)


def _arbitrate(live: pl.DataFrame) -> pl.DataFrame:
    """At most one offer per customer per day: highest priority × score, ties by offer code then id."""
    return (
        live.lazy()
        .sort(["rank_value", "code_order", "candidate_id"], descending=[True, False, False])
        .with_columns(f_arbitration=~pl.col("customer_id").is_first_distinct())
        .collect()
    )


def _apply_capacity(frame: pl.DataFrame, capacity: dict[str, int]) -> pl.DataFrame:
    """Give each capped channel's capacity to the day's best candidates, falling back channel by channel.

    Deferred acceptance: every candidate proposes to the allowed channel at its pointer; each
    capped channel keeps its best ``capacity`` proposers and the rest move their pointer on.
    Rounds repeat until nobody is rejected; every channel ranks by the same key, so the result is
    the serial "best first, each takes its first channel with room" allocation.
    """
    allowed = [f"a_{j}" for j in range(MAX_CHANNELS)]
    live = frame.filter(pl.col("reason").is_null()).select(
        "candidate_id", "rank_value", *allowed, pointer=pl.lit(0, dtype=pl.Int8)
    )

    def at_pointer() -> pl.Expr:
        pick = pl.lit(None, dtype=pl.Utf8)
        for j in reversed(range(MAX_CHANNELS)):
            pick = pl.when(pl.col("pointer") == j).then(pl.col(f"a_{j}")).otherwise(pick)
        return pick

    limits = pl.DataFrame(
        {"proposal": list(capacity), "capacity": list(capacity.values())},
        schema={"proposal": pl.Utf8, "capacity": pl.Int64},
    )
    contested = live
    while capacity and not contested.is_empty():
        proposals = contested.with_columns(proposal=at_pointer()).join(limits, on="proposal", how="inner")
        rejected = (
            proposals.sort(["rank_value", "candidate_id"], descending=[True, False])
            .with_columns(seat=pl.int_range(pl.len()).over("proposal"))
            .filter(pl.col("seat") >= pl.col("capacity"))
            .select("candidate_id", bump=pl.lit(1, dtype=pl.Int8))
        )
        if rejected.is_empty():
            break
        contested = (
            proposals.drop("proposal", "capacity")
            .join(rejected, on="candidate_id", how="left")
            .with_columns(pointer=pl.col("pointer") + pl.col("bump").fill_null(0))
            .drop("bump")
        )
        live = live.update(contested.select("candidate_id", "pointer"), on="candidate_id")
    passed = [pl.when(pl.col("pointer") > j).then(pl.col(f"a_{j}")) for j in range(MAX_CHANNELS)]
    placed = live.select(
        "candidate_id",
        chosen_channel=at_pointer(),
        passed_over=pl.concat_str(passed, separator=",", ignore_nulls=True),
    )
    frame = frame.join(placed, on="candidate_id", how="left").with_columns(
        f_capacity=pl.col("reason").is_null() & pl.col("chosen_channel").is_null()
    )
    return frame.with_columns(
        reason=pl.when(pl.col("f_capacity")).then(pl.lit("over_capacity")).otherwise(pl.col("reason")),
        detail=pl.when(pl.col("passed_over").fill_null("") != "")
        .then(pl.lit("full=") + pl.col("passed_over"))
        .otherwise(pl.lit(None, dtype=pl.Utf8)),
    )


def _zone_known(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _apply_windows(frame: pl.DataFrame, inputs: DayInputs) -> pl.DataFrame:
    """Hold what falls in quiet hours; one window computation per (time zone, channel), not per row."""
    policy = inputs.offers.policy
    windows = policy.quiet_hours
    frame = frame.with_columns(zone=pl.col("timezone").fill_null(policy.default_timezone))
    live = frame.filter(pl.col("reason").is_null() & pl.col("chosen_channel").is_in(list(windows)))
    rows = []
    for zone, channel in live.select("zone", "chosen_channel").unique().rows():
        if not _zone_known(zone):
            rows.append((zone, channel, None, True))
            continue
        at = release_time(inputs.now, windows[channel], zone, policy.holiday_country)
        rows.append((zone, channel, None if at is None else at.isoformat(), False))
    verdicts = pl.DataFrame(
        rows,
        schema={"zone": pl.Utf8, "chosen_channel": pl.Utf8, "release": pl.Utf8, "bad_zone": pl.Boolean},
        orient="row",
    )
    frame = frame.join(verdicts, on=["zone", "chosen_channel"], how="left")
    live_now = pl.col("reason").is_null()
    held = live_now & pl.col("release").is_not_null()
    bad = live_now & pl.col("bad_zone").fill_null(False)
    return frame.with_columns(
        f_window=held | bad,
        reason=pl.when(bad)
        .then(pl.lit("invalid_timezone"))
        .when(held)
        .then(pl.lit("quiet_hours_held"))
        .otherwise(pl.col("reason")),
        release_at=pl.when(held).then(pl.col("release")).otherwise(pl.lit(None, dtype=pl.Utf8)),
        detail=pl.when((live_now & ~bad) | (pl.col("reason") == "over_capacity"))
        .then(pl.col("detail"))
        .otherwise(pl.lit(None, dtype=pl.Utf8)),
    )
