"""Load one day's decision inputs from storage into Polars frames (set-based, no per-row Python).

Call-outcome contract (shared with the call-centre and tracking code): an answer "not interested"
is a ``delivery_events`` row on the message that made the contact, with
``event_type = 'replied'`` and ``description = 'not_interested'`` (``NOT_INTERESTED`` below), and
``occurred_at`` the moment the customer said it. The topic is the topic of the message's offer.
The policy counts these per customer and topic (reason code ``not_interested_topic``). Any
channel may record one (a call outcome, an SMS reply classified as such).

Contacts that count towards caps and cooldowns are the ledger's messages of the history window
whose status is not in ``NOT_CONTACTS`` (cancelled before sending, failed, expired): a message
that is planned, held or in flight reserves its place, so the next day cannot exceed a cap
while yesterday's held message still waits for its window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import polars as pl
from sqlalchemy import Engine

from outreach.config import OffersFile
from outreach.policy.frames import read_frames

NOT_INTERESTED = ("replied", "not_interested")  # (event_type, description) in delivery_events
NOT_CONTACTS = ("cancelled", "failed", "expired")
# two reading lanes of about equal weight (the big tables are candidates, customers, messages)
LANES = [
    ["messages", "consent_events", "suppressions", "delivery_events"],
    ["candidates", "customers", "holdings"],
]
ARROW_FROM = 20_000  # candidates from which the Arrow readers pay off on SQLite
LOOKUP_SHARE = 4  # below 1 candidate customer in 4 customers, filter in SQL instead of scanning

CANDIDATES = {
    "candidate_id": pl.Int64,
    "customer_id": pl.Utf8,
    "offer_code": pl.Utf8,
    "score": pl.Float64,
    "trigger": pl.Utf8,  # campaigns (outreach/campaigns/seam.py) read trigger and trigger_ref
    "trigger_ref": pl.Utf8,
}
CUSTOMERS = {
    "customer_id": pl.Utf8,
    "mobile_valid": pl.Boolean,
    "email_valid": pl.Boolean,
    "address_valid": pl.Boolean,
    "timezone": pl.Utf8,
}
CONSENT = {
    "customer_id": pl.Utf8,
    "scope": pl.Utf8,
    "choice": pl.Utf8,
    "recorded_at": pl.Datetime("us", "UTC"),
    "event_id": pl.Int64,
}
SUPPRESSIONS = {"customer_id": pl.Utf8, "reason": pl.Utf8, "valid_from": pl.Date, "valid_until": pl.Date}
HOLDINGS = {"customer_id": pl.Utf8, "product": pl.Utf8}
CONTACTS = {
    "customer_id": pl.Utf8,
    "offer_code": pl.Utf8,
    "channel": pl.Utf8,
    "sent_date": pl.Date,
    "status": pl.Utf8,
}
ANSWERS = {"customer_id": pl.Utf8, "offer_code": pl.Utf8, "occurred_at": pl.Datetime("us", "UTC")}
FAR_FUTURE = date(9999, 12, 31)


def _empty(schema: dict) -> pl.DataFrame:
    return pl.DataFrame(schema=schema)


@dataclass
class DayInputs:
    run_date: date
    now: datetime  # aware; the moment messages would be sent
    offers: OffersFile
    candidates: pl.DataFrame  # CANDIDATES
    customers: pl.DataFrame  # CUSTOMERS
    consent: pl.DataFrame  # CONSENT: every event up to ``now``; the engine takes the latest per scope
    suppressions: pl.DataFrame  # SUPPRESSIONS (valid_until FAR_FUTURE when open-ended)
    holdings: pl.DataFrame  # HOLDINGS
    contacts: pl.DataFrame  # CONTACTS: ledger messages of the history window, up to the run date
    answers: pl.DataFrame = field(default_factory=lambda: _empty(ANSWERS))  # "not interested" answers


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _in_list(values: list[str]) -> str:
    return "(" + ", ".join(_quote(v) for v in sorted(set(values))) + ")"


def _scalar(engine: Engine, sql: str) -> int:
    from sqlalchemy import text

    with engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar() or 0)


def load_inputs(
    engine: Engine,
    run_date: date,
    offers: OffersFile,
    now: datetime,
    *,
    include_same_day: bool = True,
    customer_ids: list[str] | None = None,
    use_adbc: bool | None = None,
) -> DayInputs:
    """Everything the engine needs for ``run_date``.

    ``include_same_day`` counts the run date's own ledger messages as contacts (a later run on the
    same day sees what an earlier one planned); a preview of a whole day leaves them out.
    ``customer_ids`` narrows the day to a few customers (``explain``). ``use_adbc``: None picks
    the Arrow readers for big days (on SQLite they cost a child process, ~0.5 s to start).
    """
    if now.tzinfo is None:
        raise ValueError("load_inputs: `now` must be timezone-aware")
    now = now.astimezone(UTC)
    policy = offers.policy
    day = _quote(run_date.isoformat())
    cand_filter = f"candidate_date = {day}"
    if customer_ids is not None:
        cand_filter += f" AND customer_id IN {_in_list(customer_ids or [''])}"
    day_customers = f"customer_id IN (SELECT customer_id FROM candidates WHERE {cand_filter})"
    if customer_ids is not None:  # the named customers even before their candidates are committed (live lane)
        day_customers = f"customer_id IN {_in_list(customer_ids or [''])}"

    n_candidates = _scalar(engine, f"SELECT COUNT(*) FROM candidates WHERE {cand_filter}")
    if customer_ids is not None:
        lookup = True
    else:  # scanning whole tables beats an IN-subquery when the day touches many of the customers
        lookup = n_candidates * LOOKUP_SHARE < _scalar(engine, "SELECT COUNT(*) FROM customers")
    if use_adbc is None:
        use_adbc = n_candidates >= ARROW_FROM or engine.url.get_backend_name() == "postgresql"
    where = f" WHERE {day_customers}" if lookup else ""
    also = f" AND {day_customers}" if lookup else ""
    products = [o.product for o in offers.offers]
    since = _quote((run_date - timedelta(days=policy.history_days(offers.offers))).isoformat())
    until = f"run_date <= {day}" if include_same_day else f"run_date < {day}"
    lookback = policy.not_interested_window_days + policy.not_interested_suppress_days + 1
    answers_since = _quote((run_date - timedelta(days=lookback)).isoformat())
    queries = {
        "candidates": (
            "SELECT id, customer_id, offer_code, score, trigger, trigger_ref FROM candidates"
            f" WHERE {cand_filter}",
            CANDIDATES,
        ),
        "customers": (
            "SELECT customer_id, mobile_valid, email_valid, address_valid, timezone FROM customers" + where,
            CUSTOMERS,
        ),
        "consent_events": (
            "SELECT customer_id, scope, choice, recorded_at, id FROM consent_events" + where,
            CONSENT,
        ),
        "suppressions": (
            "SELECT customer_id, reason, valid_from, COALESCE(valid_until, '9999-12-31') FROM suppressions"
            f" WHERE valid_from <= {day} AND (valid_until IS NULL OR valid_until >= {day}){also}",
            SUPPRESSIONS,
        ),
        "holdings": (
            f"SELECT customer_id, product FROM holdings WHERE product IN {_in_list(products)}{also}",
            HOLDINGS,
        ),
        "messages": (
            "SELECT customer_id, offer_code, channel, run_date, status FROM messages"
            f" WHERE run_date >= {since} AND {until} AND status NOT IN {_in_list(list(NOT_CONTACTS))}{also}",
            CONTACTS,
        ),
        "delivery_events": (
            "SELECT m.customer_id, m.offer_code, e.occurred_at FROM delivery_events e"
            " JOIN messages m ON m.id = e.message_id"
            f" WHERE e.event_type = {_quote(NOT_INTERESTED[0])}"
            f" AND e.description = {_quote(NOT_INTERESTED[1])}"
            f" AND e.occurred_at >= {answers_since}" + (f" AND m.{day_customers}" if lookup else ""),
            ANSWERS,
        ),
    }
    frames = read_frames(engine, queries, use_adbc=use_adbc, lanes=LANES)
    candidates, customers, consent = frames["candidates"], frames["customers"], frames["consent_events"]
    suppressions, holdings, contacts = frames["suppressions"], frames["holdings"], frames["messages"]
    answers = frames["delivery_events"]
    # after a scan the frames also hold customers without a candidate today: the engine's
    # left joins ignore them, which is cheaper than filtering every table first
    consent = consent.filter(pl.col("recorded_at") <= now)
    answers = answers.filter(pl.col("occurred_at") <= now)
    return DayInputs(
        run_date, now, offers, candidates, customers, consent, suppressions, holdings, contacts, answers
    )
