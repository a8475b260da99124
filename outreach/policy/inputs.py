"""Load one day's decision inputs from storage into Polars frames (set-based, no per-row Python)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import polars as pl
from sqlalchemy import Engine, text

from outreach.config import OffersFile

SENT_STATUSES = ("sent", "delivered", "undelivered", "bounced")  # contacts that count towards caps


@dataclass
class DayInputs:
    run_date: date
    now: datetime  # aware; the moment messages would be sent
    offers: OffersFile
    candidates: pl.DataFrame  # candidate_id, customer_id, offer_code, trigger, trigger_ref, score
    customers: pl.DataFrame  # customer_id, mobile_valid, email_valid, address_valid, timezone
    consent: pl.DataFrame  # customer_id, scope, choice  (latest per scope as of now)
    suppressions: pl.DataFrame  # customer_id, reason  (active on run_date)
    holdings: pl.DataFrame  # customer_id, product
    contacts: pl.DataFrame  # customer_id, offer_code, channel, sent_date  (last 180 days)


def _frame(engine: Engine, sql: str, schema: dict, **params) -> pl.DataFrame:
    with engine.connect() as conn:
        rows = conn.execute(text(sql), params).all()
    if engine.dialect.name != "sqlite":
        return pl.DataFrame([tuple(r) for r in rows], schema=schema, orient="row")
    # a raw query on SQLite returns dates as ISO text: read those columns as text, then parse them
    dates = [name for name, dtype in schema.items() if dtype == pl.Date]
    as_text = {name: pl.Utf8 if name in dates else dtype for name, dtype in schema.items()}
    frame = pl.DataFrame([tuple(r) for r in rows], schema=as_text, orient="row")
    return frame.with_columns(pl.col(name).str.to_date() for name in dates)


def load_inputs(engine: Engine, run_date: date, offers: OffersFile, now: datetime) -> DayInputs:
    candidates = _frame(
        engine,
        "SELECT id, customer_id, offer_code, trigger, trigger_ref, score FROM candidates"
        " WHERE candidate_date = :d",
        {
            "candidate_id": pl.Int64,
            "customer_id": pl.Utf8,
            "offer_code": pl.Utf8,
            "trigger": pl.Utf8,
            "trigger_ref": pl.Utf8,
            "score": pl.Float64,
        },
        d=run_date,
    )
    customers = _frame(
        engine,
        "SELECT customer_id, mobile_valid, email_valid, address_valid, timezone FROM customers"
        " WHERE customer_id IN (SELECT customer_id FROM candidates WHERE candidate_date = :d)",
        {
            "customer_id": pl.Utf8,
            "mobile_valid": pl.Boolean,
            "email_valid": pl.Boolean,
            "address_valid": pl.Boolean,
            "timezone": pl.Utf8,
        },
        d=run_date,
    )
    consent = _frame(
        engine,
        """SELECT customer_id, scope, choice FROM (
             SELECT customer_id, scope, choice, ROW_NUMBER() OVER (
               PARTITION BY customer_id, scope ORDER BY recorded_at DESC, id DESC) AS rn
             FROM consent_events WHERE recorded_at <= :now
               AND customer_id IN (SELECT customer_id FROM candidates WHERE candidate_date = :d)
           ) latest WHERE rn = 1""",
        {"customer_id": pl.Utf8, "scope": pl.Utf8, "choice": pl.Utf8},
        d=run_date,
        now=now,
    )
    suppressions = _frame(
        engine,
        "SELECT customer_id, reason FROM suppressions WHERE valid_from <= :d"
        " AND (valid_until IS NULL OR valid_until >= :d)",
        {"customer_id": pl.Utf8, "reason": pl.Utf8},
        d=run_date,
    )
    holdings = _frame(
        engine, "SELECT customer_id, product FROM holdings", {"customer_id": pl.Utf8, "product": pl.Utf8}
    )
    since = run_date - timedelta(days=180)
    contacts = _frame(
        engine,
        "SELECT customer_id, offer_code, channel, run_date FROM messages"
        f" WHERE run_date >= :since AND run_date < :d AND status IN {SENT_STATUSES}",
        {"customer_id": pl.Utf8, "offer_code": pl.Utf8, "channel": pl.Utf8, "sent_date": pl.Date},
        since=since,
        d=run_date,
    )
    return DayInputs(run_date, now, offers, candidates, customers, consent, suppressions, holdings, contacts)
