"""Property tests over random consent histories, suppressions and contact histories.

Invariants checked on every generated day (in memory, the engine exactly as production runs it):
no opted-out or suppressed customer is planned, caps and cooldowns hold, one offer per customer
per day, capacity holds, every candidate has exactly one outcome with a known reason, a held
message is released exactly when its window opens (never before). The naive per-row reference
implementation must agree with the set-based engine row for row. A multi-day simulation checks
caps and cooldowns across consecutive days.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from outreach.config import CHANNEL_SCOPE
from outreach.policy import REASONS, DayInputs, decide
from outreach.policy.engine import REJECTED
from outreach.policy.inputs import CONTACTS, NOT_CONTACTS
from outreach.policy.windows import release_time
from outreach_dev.policy_reference import decide_naive
from tests.policy_gen import days

PROFILE = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _inputs(offers, day, now, frames) -> DayInputs:
    return DayInputs(day, now, offers, **frames)


def _latest(consent: pl.DataFrame, now: datetime) -> dict[tuple[str, str], str]:
    out: dict[tuple[str, str], tuple] = {}
    for e in (
        consent.filter(pl.col("recorded_at") <= now).sort("recorded_at", "event_id").iter_rows(named=True)
    ):
        out[(e["customer_id"], e["scope"])] = e["choice"]
    return out


def check_invariants(inputs: DayInputs, out: pl.DataFrame) -> None:
    offers = inputs.offers.by_code()
    policy = inputs.offers.policy
    day = inputs.run_date
    # every candidate exactly once, one known reason, outcome consistent with the reason
    assert out["candidate_id"].sort().to_list() == inputs.candidates["candidate_id"].sort().to_list()
    assert set(out["reason"]) <= set(REASONS)
    for row in out.iter_rows(named=True):
        expected = (
            "rejected"
            if row["reason"] in REJECTED
            else "held"
            if row["reason"] == "quiet_hours_held"
            else "planned"
            if row["reason"] == "planned"
            else "suppressed"
        )
        assert row["outcome"] == expected, row
        assert (row["channel"] is not None) == (row["outcome"] in ("planned", "held")), row
    live = out.filter(pl.col("outcome").is_in(["planned", "held"]))
    # at most one offer per customer per day
    assert live["customer_id"].is_unique().all()
    # capacity per channel
    for channel, cap in policy.capacity.items():
        assert live.filter(pl.col("channel") == channel).height <= cap
    choice = _latest(inputs.consent, inputs.now)
    active = defaultdict(list)
    for s in inputs.suppressions.iter_rows(named=True):
        if s["valid_from"] <= day and (s["valid_until"] is None or s["valid_until"] >= day):
            active[s["customer_id"]].append(s["reason"])
    counted = [
        c
        for c in inputs.contacts.iter_rows(named=True)
        if c["status"] not in NOT_CONTACTS and (day - c["sent_date"]).days >= 0
    ]
    customers = {c["customer_id"]: c for c in inputs.customers.iter_rows(named=True)}
    for row in live.iter_rows(named=True):
        cid, offer, channel = row["customer_id"], offers[row["offer_code"]], row["channel"]
        assert cid in customers and channel in offer.channels
        # no opted-out customer is planned: global, channel, topic (latest event as of `now`)
        assert choice.get((cid, "all")) != "opt_out"
        assert choice.get((cid, CHANNEL_SCOPE[channel])) != "opt_out"
        assert choice.get((cid, f"topic:{offer.topic}")) != "opt_out"
        if channel in policy.opt_in_channels:
            assert choice.get((cid, CHANNEL_SCOPE[channel])) == "opt_in"
            assert row["legal_basis"] == "consent"
        if offer.legal_basis == "consent":
            assert choice.get((cid, f"topic:{offer.topic}")) == "opt_in"
        # no suppressed customer is planned
        for reason in active[cid]:
            scope = policy.suppression_scopes.get(reason, "all")
            assert scope != "all" and offer.topic not in scope, (cid, reason)
        # caps across channels and per channel; cooldown
        mine = [c for c in counted if c["customer_id"] == cid]
        ages = [(day - c["sent_date"]).days for c in mine]
        assert sum(a < 7 for a in ages) < policy.caps.per_7_days
        assert sum(a < 30 for a in ages) < policy.caps.per_30_days
        cooldown = offer.cooldown_days if offer.cooldown_days is not None else policy.cooldown_days
        assert not any((day - c["sent_date"]).days < cooldown for c in mine if c["offer_code"] == offer.code)
        for days_, limits in ((7, policy.caps.per_channel_7_days), (30, policy.caps.per_channel_30_days)):
            if channel in limits:
                assert (
                    sum(1 for c in mine if c["channel"] == channel and (day - c["sent_date"]).days < days_)
                    < (limits[channel])
                )
        # sending windows: planned means open now; held means released exactly at the next opening
        window = policy.quiet_hours.get(channel)
        zone = customers[cid]["timezone"] or policy.default_timezone
        if row["outcome"] == "planned":
            assert window is None or release_time(inputs.now, window, zone, policy.holiday_country) is None
        else:
            release = datetime.fromisoformat(row["release_at"])
            assert release > inputs.now
            assert release_time(release, window, zone) is None  # open at the release moment
            assert release_time(release - timedelta(seconds=1), window, zone) == release  # shut just before


@PROFILE
@given(days())
def test_random_days_keep_every_invariant_and_match_the_reference(day_case):
    offers, day, now, frames = day_case
    inputs = _inputs(offers, day, now, frames)
    out = decide(inputs)
    check_invariants(inputs, out)
    reference = decide_naive(inputs)
    assert out.equals(reference), out.join(reference, on="candidate_id", suffix="_ref").filter(
        pl.any_horizontal(
            [pl.col(c).ne_missing(pl.col(f"{c}_ref")) for c in out.columns if c != "candidate_id"]
        )
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(days(max_customers=4), st.integers(4, 9), st.integers(0, 2**32))
def test_consecutive_days_never_exceed_caps_or_cooldowns(day_case, n_days, seed):
    """Decide, send what was planned, next day: caps and cooldowns hold over the whole run."""
    offers, first_day, now, frames = day_case
    policy = offers.policy
    contacts = frames["contacts"].filter(~pl.col("status").is_in(list(NOT_CONTACTS)))
    history = contacts.to_dicts()
    sent_in_run: list[dict] = []
    rnd = random.Random(seed)
    for offset in range(n_days):
        day = first_day + timedelta(days=offset)
        moment = now + timedelta(days=offset)
        # the same customers turn up again with fresh random candidates every day
        cands = frames["candidates"].with_columns(
            pl.col("candidate_id") + offset * 1000,
            score=pl.Series([rnd.random() for _ in range(frames["candidates"].height)]),
        )
        todays = {**frames, "candidates": cands, "contacts": pl.DataFrame(history, schema=CONTACTS)}
        out = decide(DayInputs(day, moment, offers, **todays))
        check_invariants(DayInputs(day, moment, offers, **todays), out)
        for row in out.filter(pl.col("outcome").is_in(["planned", "held"])).iter_rows(named=True):
            # a held message stays planned in the ledger until released: it counts all the same
            status = "sent" if row["outcome"] == "planned" else "planned"
            item = {
                "customer_id": row["customer_id"],
                "offer_code": row["offer_code"],
                "channel": row["channel"],
                "sent_date": day,
                "status": status,
            }
            history.append(item)
            sent_in_run.append(item)
    # over the run: per customer, any window of 7 / 30 days holds at most the cap; cooldowns hold
    every = defaultdict(list)
    for c in history:
        every[c["customer_id"]].append(c)
    for cid, items in every.items():
        run_days = sorted({c["sent_date"] for c in sent_in_run if c["customer_id"] == cid})
        for end in run_days:
            for days_, cap in ((7, policy.caps.per_7_days), (30, policy.caps.per_30_days)):
                # the window ending on a day the run contacted the customer: at most the cap
                n = sum(1 for c in items if 0 <= (end - c["sent_date"]).days < days_)
                assert n <= cap, (cid, end, days_, n, cap)
        mine = sorted((c for c in sent_in_run if c["customer_id"] == cid), key=lambda c: c["sent_date"])
        assert len({c["sent_date"] for c in mine}) == len(mine)  # one per day
        for a, b in zip(mine, mine[1:], strict=False):
            if a["offer_code"] == b["offer_code"]:
                offer = offers.by_code()[a["offer_code"]]
                cooldown = offer.cooldown_days if offer.cooldown_days is not None else policy.cooldown_days
                assert (b["sent_date"] - a["sent_date"]).days >= cooldown


def test_a_consent_event_after_the_decision_moment_does_not_count():
    from outreach.config import OffersFile
    from outreach.policy.inputs import ANSWERS, CANDIDATES, CONSENT, CUSTOMERS, HOLDINGS, SUPPRESSIONS
    from tests.policy_gen import OFFERS

    now = datetime(2026, 11, 18, 11, tzinfo=UTC)
    frames = {
        "candidates": pl.DataFrame(
            [{"candidate_id": 1, "customer_id": "A", "offer_code": "KIDS", "score": 1.0}], schema=CANDIDATES
        ),
        "customers": pl.DataFrame(
            [
                {
                    "customer_id": "A",
                    "mobile_valid": True,
                    "email_valid": True,
                    "address_valid": True,
                    "timezone": None,
                }
            ],
            schema=CUSTOMERS,
        ),
        "consent": pl.DataFrame(
            [
                {
                    "customer_id": "A",
                    "scope": "all",
                    "choice": "opt_out",
                    "recorded_at": now + timedelta(seconds=1),
                    "event_id": 1,
                }
            ],
            schema=CONSENT,
        ),
        "suppressions": pl.DataFrame(schema=SUPPRESSIONS),
        "holdings": pl.DataFrame(schema=HOLDINGS),
        "contacts": pl.DataFrame(schema=CONTACTS),
        "answers": pl.DataFrame(schema=ANSWERS),
    }
    offers = OffersFile(offers=OFFERS)
    assert decide(DayInputs(now.date(), now, offers, **frames))["outcome"].to_list() == ["planned"]
    later = now + timedelta(seconds=2)
    assert decide(DayInputs(now.date(), later, offers, **frames))["reason"].to_list() == ["opted_out_global"]
