"""Hypothesis strategies for random policy days: customers, consent histories, suppressions, ledgers."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import polars as pl
from hypothesis import strategies as st

from outreach.config import Caps, Offer, OffersFile, Policy, QuietHours
from outreach.policy.inputs import ANSWERS, CANDIDATES, CONSENT, CONTACTS, CUSTOMERS, HOLDINGS, SUPPRESSIONS

OFFERS = [
    Offer(
        code="KIDS", product="kids_savings", topic="savings", priority=5, channels=["email", "sms", "letter"]
    ),
    Offer(code="INVEST", product="investments", topic="investing", priority=4, channels=["call", "email"]),
    Offer(
        code="BOOST",
        product="savings",
        topic="savings",
        priority=3,
        channels=["email", "letter"],
        cooldown_days=20,
    ),
    Offer(code="TRAVEL", product="travel", topic="insurance", priority=2, channels=["sms", "email"]),
    Offer(
        code="CARD",
        product="card",
        topic="credit",
        priority=1,
        channels=["letter", "email"],
        legal_basis="consent",
    ),
]
CODES = [o.code for o in OFFERS] + ["GONE"]  # GONE: an offer not in the file
SCOPES = ["all", "sms", "email", "letter", "phone", "topic:savings", "topic:credit", "topic:insurance"]
REASONS = ["vulnerable", "arrears", "deceased", "minor", "complaint", "fraud"]
ZONES = ["Europe/Amsterdam", "Europe/Amsterdam", "America/New_York", "Asia/Tokyo", "Not/AZone"]
STATUSES = ["sent", "delivered", "planned", "failed", "cancelled", "bounced"]
# days around the DST switches, a Dutch holiday (King's Day 2026 is a Monday), a weekend and Christmas
DAYS = [date(2026, 3, 29), date(2026, 10, 25), date(2026, 4, 27), date(2026, 11, 18), date(2026, 11, 21)]


@st.composite
def policies(draw) -> OffersFile:
    caps = Caps(
        per_7_days=draw(st.integers(1, 2)),
        per_30_days=draw(st.integers(1, 4)),
        per_channel_7_days=draw(
            st.dictionaries(st.sampled_from(["sms", "email"]), st.integers(0, 1), max_size=1)
        ),
        per_channel_30_days=draw(
            st.dictionaries(st.sampled_from(["letter", "call"]), st.integers(0, 2), max_size=1)
        ),
    )
    scopes = {"deceased": "all", "minor": "all", "vulnerable": "all", "complaint": "all"}
    scopes["arrears"] = draw(st.sampled_from(["all", ["credit"]]))
    policy = Policy(
        caps=caps,
        cooldown_days=draw(st.sampled_from([10, 90])),
        not_interested_window_days=draw(st.sampled_from([30, 365])),
        not_interested_suppress_days=draw(st.sampled_from([20, 180])),
        suppression_scopes=scopes,
        capacity=draw(
            st.dictionaries(
                st.sampled_from(["call", "letter", "sms", "email"]), st.integers(0, 2), max_size=4
            )
        ),
        opt_in_channels=draw(st.sampled_from([[], ["call"]])),
        quiet_hours={
            "sms": QuietHours(start=time(9), end=time(20)),
            "call": QuietHours(start=time(9), end=time(20), working_days_only=True),
        },
    )
    return OffersFile(policy=policy, offers=OFFERS)


def _stamp(day: date, minutes: int) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC) + timedelta(minutes=minutes)


@st.composite
def days(draw, max_customers: int = 10):
    """(offers file, run date, now, frames) for one random day."""
    offers = draw(policies())
    day = draw(st.sampled_from(DAYS))
    now = _stamp(day, draw(st.integers(0, 24 * 60 - 1)))
    n = draw(st.integers(1, max_customers))
    ids = [f"C{i}" for i in range(n)]
    customers = [
        {
            "customer_id": cid,
            "mobile_valid": draw(st.booleans()),
            "email_valid": draw(st.booleans()),
            "address_valid": draw(st.booleans()),
            "timezone": draw(st.sampled_from(ZONES)),
        }
        for cid in ids
    ]
    who = st.sampled_from(ids)
    consent = [
        {
            "customer_id": draw(who),
            "scope": draw(st.sampled_from(SCOPES)),
            "choice": draw(st.sampled_from(["opt_out", "opt_in"])),
            # some events land after `now`: they must not count yet
            "recorded_at": now + timedelta(minutes=draw(st.integers(-3000, 60))),
            "event_id": i + 1,
        }
        for i in range(draw(st.integers(0, 3 * n)))
    ]
    suppressions = []
    for _ in range(draw(st.integers(0, n))):
        start = day + timedelta(days=draw(st.integers(-10, 3)))
        end = draw(st.one_of(st.none(), st.integers(-3, 10).map(lambda d: day + timedelta(days=d))))
        suppressions.append(
            {
                "customer_id": draw(who),
                "reason": draw(st.sampled_from(REASONS)),
                "valid_from": start,
                "valid_until": end,
            }
        )
    holdings = [
        {"customer_id": draw(who), "product": draw(st.sampled_from([o.product for o in OFFERS]))}
        for _ in range(draw(st.integers(0, n)))
    ]
    contacts = [
        {
            "customer_id": draw(who),
            "offer_code": draw(st.sampled_from(CODES)),
            "channel": draw(st.sampled_from(["sms", "email", "letter", "call"])),
            "sent_date": day - timedelta(days=draw(st.integers(1, 100))),
            "status": draw(st.sampled_from(STATUSES)),
        }
        for _ in range(draw(st.integers(0, 3 * n)))
    ]
    answers = [
        {
            "customer_id": draw(who),
            "offer_code": draw(st.sampled_from(CODES)),
            "occurred_at": now - timedelta(hours=draw(st.integers(1, 24 * 400))),
        }
        for _ in range(draw(st.integers(0, 2 * n)))
    ]
    candidates = [
        {
            "candidate_id": i + 1,
            "customer_id": draw(st.one_of(who, st.just("GHOST")))
            if draw(st.integers(0, 9)) == 0
            else draw(who),
            "offer_code": draw(st.sampled_from(CODES))
            if draw(st.integers(0, 9)) == 0
            else draw(st.sampled_from(CODES[:-1])),
            "score": draw(st.sampled_from([0.0, 0.25, 0.5, 0.5, 0.9, 1.0])),
        }
        for i in range(draw(st.integers(1, 4 * n)))
    ]
    frames = {
        "candidates": pl.DataFrame(candidates, schema=CANDIDATES),
        "customers": pl.DataFrame(customers, schema=CUSTOMERS),
        "consent": pl.DataFrame(consent, schema=CONSENT),
        "suppressions": pl.DataFrame(suppressions, schema=SUPPRESSIONS),
        "holdings": pl.DataFrame(holdings, schema=HOLDINGS).unique(),
        "contacts": pl.DataFrame(contacts, schema=CONTACTS),
        "answers": pl.DataFrame(answers, schema=ANSWERS),
    }
    return offers, day, now, frames
