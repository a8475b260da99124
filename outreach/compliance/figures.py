"""The figures of the accountability report, one query each, over a period of days (UTC, inclusive).

A *contact* is a message handed to a provider or to print or the call list (``sent_at`` set). Every
function reads the database only and returns plain rows, so each can be tested on seeded data.

- ``contacts``: contacts and customers contacted, per offer and channel.
- ``objections_by_path``: opt-outs recorded in the period, by the path they came in on (the consent
  source up to its first ":", e.g. ``sms``, ``email``, ``call_centre``, ``web``) and scope.
- ``objection_effect``: per objection, the time from the objection to the last contact in its scope
  made after it (0 when none was: the objection took effect before any further contact).
- ``complaints``: complaint events (e.g. SendGrid spam reports) per offer and channel.
- ``contacts_despite``: contacts made while the customer's latest choice in the scope (all, the
  channel, the offer's topic) was an opt-out, or while a suppression covering the offer was active.
- ``quiet_hour_contacts``: contacts made outside the channel's window in the customer's time zone
  (SMS at ``sent_at``; calls at each attempt, also on non-working days).
- ``opt_out_after_contact``: customers contacted who objected within ``window_days`` after it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import polars as pl
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from outreach.calls.hours import is_calling_day, zone
from outreach.calls.models import CallAttempt, CallTask
from outreach.config import CHANNEL_SCOPE, OffersFile
from outreach.db import as_utc
from outreach.models import ConsentEvent, Customer, DeliveryEventRecord, Message, Suppression

Key = tuple[str, str]  # (offer, channel)


@dataclass(frozen=True)
class Period:
    first: date
    last: date

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(), UTC)

    @property
    def end(self) -> datetime:  # exclusive
        return datetime.combine(self.last + timedelta(days=1), time(), UTC)


def _sent(period: Period):
    return (
        select(
            Message.id,
            Message.customer_id,
            Message.offer_code,
            Message.channel,
            Message.run_date,
            Message.sent_at,
        )
        .where(Message.sent_at >= period.start, Message.sent_at < period.end)
        .order_by(Message.id)
    )


def _frame(session: Session, stmt, schema: dict) -> pl.DataFrame:
    rows = session.execute(stmt).all()
    return pl.DataFrame([tuple(r) for r in rows], schema=schema, orient="row")


SENT_SCHEMA = {
    "message_id": pl.Int64,
    "customer_id": pl.Utf8,
    "offer_code": pl.Utf8,
    "channel": pl.Utf8,
    "run_date": pl.Date,
    "sent_at": pl.Datetime("us", "UTC"),
}


def sent_frame(session: Session, period: Period) -> pl.DataFrame:
    frame = _frame(session, _sent(period), {**SENT_SCHEMA, "sent_at": pl.Datetime("us")})
    return _utc(frame, "sent_at")


def _utc(frame: pl.DataFrame, column: str) -> pl.DataFrame:
    """SQLite hands back naive UTC, PostgreSQL aware values: one aware UTC column either way."""
    dtype = frame.schema[column]
    if getattr(dtype, "time_zone", None):
        return frame.with_columns(pl.col(column).dt.convert_time_zone("UTC"))
    return frame.with_columns(pl.col(column).dt.replace_time_zone("UTC"))


def contacts(sent: pl.DataFrame) -> dict[Key, tuple[int, int]]:
    """(contacts, customers contacted) per offer and channel."""
    grouped = sent.group_by("offer_code", "channel").agg(
        pl.len().alias("contacts"), pl.col("customer_id").n_unique().alias("customers")
    )
    return {(r["offer_code"], r["channel"]): (r["contacts"], r["customers"]) for r in grouped.to_dicts()}


def _opt_outs(session: Session, since: datetime, until: datetime) -> pl.DataFrame:
    stmt = select(
        ConsentEvent.customer_id, ConsentEvent.scope, ConsentEvent.source, ConsentEvent.recorded_at
    ).where(
        ConsentEvent.choice == "opt_out",
        ConsentEvent.recorded_at >= since,
        ConsentEvent.recorded_at < until,
    )
    schema = {"customer_id": pl.Utf8, "scope": pl.Utf8, "source": pl.Utf8, "recorded_at": pl.Datetime("us")}
    return _utc(_frame(session, stmt, schema), "recorded_at")


def path_of(source: str) -> str:
    return source.split(":", 1)[0] or "unknown"


def objections_by_path(session: Session, period: Period) -> list[dict]:
    """Rows of path, scope, objections, customers; most frequent first."""
    frame = _opt_outs(session, period.start, period.end)
    if frame.is_empty():
        return []
    grouped = (
        frame.with_columns(pl.col("source").map_elements(path_of, return_dtype=pl.Utf8).alias("path"))
        .group_by("path", "scope")
        .agg(pl.len().alias("objections"), pl.col("customer_id").n_unique().alias("customers"))
        .sort(["objections", "path", "scope"], descending=[True, False, False])
    )
    return grouped.to_dicts()


def _scopes_of(frame: pl.DataFrame, topics: dict[str, str]) -> pl.DataFrame:
    """Each contact once per consent scope that governs it: all, its channel, its offer's topic."""
    return frame.with_columns(
        pl.concat_list(
            pl.lit("all"),
            pl.col("channel").replace_strict(CHANNEL_SCOPE, default=pl.col("channel")),
            pl.lit("topic:") + pl.col("offer_code").replace_strict(topics, default="?"),
        ).alias("scope")
    ).explode("scope")


def objection_effect(session: Session, period: Period, offers: OffersFile) -> list[float]:
    """Seconds from each objection in the period to the last contact in its scope after it (0: none)."""
    objections = _opt_outs(session, period.start, period.end)
    if objections.is_empty():
        return []
    ids = objections["customer_id"].unique().to_list()
    stmt = select(Message.customer_id, Message.offer_code, Message.channel, Message.sent_at).where(
        Message.customer_id.in_(ids), Message.sent_at >= period.start
    )
    schema = {"customer_id": pl.Utf8, "offer_code": pl.Utf8, "channel": pl.Utf8, "sent_at": pl.Datetime("us")}
    later = _scopes_of(_utc(_frame(session, stmt, schema), "sent_at"), _topics(offers))
    joined = objections.with_row_index("objection").join(later, on=["customer_id", "scope"], how="left")
    delays = (
        joined.with_columns(
            pl.when(pl.col("sent_at") > pl.col("recorded_at"))
            .then((pl.col("sent_at") - pl.col("recorded_at")).dt.total_microseconds() / 1e6)
            .otherwise(0.0)
            .alias("delay")
        )
        .group_by("objection")
        .agg(pl.col("delay").max())
    )
    return delays["delay"].fill_null(0.0).to_list()


def _topics(offers: OffersFile) -> dict[str, str]:
    return {o.code: o.topic for o in offers.offers}


def complaints(session: Session, period: Period) -> dict[Key, int]:
    stmt = (
        select(Message.offer_code, Message.channel, func.count())
        .select_from(DeliveryEventRecord)
        .join(Message, Message.id == DeliveryEventRecord.message_id)
        .where(
            DeliveryEventRecord.event_type == "complained",
            DeliveryEventRecord.occurred_at >= period.start,
            DeliveryEventRecord.occurred_at < period.end,
        )
        .group_by(Message.offer_code, Message.channel)
    )
    return {(offer, channel): n for offer, channel, n in session.execute(stmt)}


def contacts_despite(
    session: Session, sent: pl.DataFrame, offers: OffersFile
) -> tuple[dict[Key, int], dict[Key, int]]:
    """(contacts of customers who had objected, contacts of suppressed customers) per offer and channel."""
    if sent.is_empty():
        return {}, {}
    ids = sent["customer_id"].unique().to_list()
    events = _chunked(
        session,
        ids,
        lambda chunk: select(
            ConsentEvent.customer_id, ConsentEvent.scope, ConsentEvent.choice, ConsentEvent.recorded_at
        ).where(ConsentEvent.customer_id.in_(chunk)),
        {"customer_id": pl.Utf8, "scope": pl.Utf8, "choice": pl.Utf8, "recorded_at": pl.Datetime("us")},
    )
    events = _utc(events, "recorded_at").sort("recorded_at")
    scoped = _scopes_of(sent, _topics(offers)).sort("sent_at")
    latest = scoped.join_asof(  # both sides are sorted on their time columns just above
        events,
        left_on="sent_at",
        right_on="recorded_at",
        by=["customer_id", "scope"],
        strategy="backward",
        check_sortedness=False,
    )
    objected = (
        latest.filter(pl.col("choice") == "opt_out")
        .unique("message_id")
        .group_by("offer_code", "channel")
        .agg(pl.len().alias("n"))
    )
    suppressions = _chunked(
        session,
        ids,
        lambda chunk: select(
            Suppression.customer_id, Suppression.reason, Suppression.valid_from, Suppression.valid_until
        ).where(Suppression.customer_id.in_(chunk)),
        {"customer_id": pl.Utf8, "reason": pl.Utf8, "valid_from": pl.Date, "valid_until": pl.Date},
    )
    scopes = offers.policy.suppression_scopes
    covered = sent.join(suppressions, on="customer_id").filter(
        (pl.col("valid_from") <= pl.col("run_date"))
        & (pl.col("valid_until").is_null() | (pl.col("run_date") <= pl.col("valid_until")))
    )
    topics = _topics(offers)
    covered = covered.filter(
        pl.struct("reason", "offer_code").map_elements(
            lambda r: _suppression_covers(scopes.get(r["reason"], "all"), topics.get(r["offer_code"])),
            return_dtype=pl.Boolean,
        )
    )
    suppressed = covered.unique("message_id").group_by("offer_code", "channel").agg(pl.len().alias("n"))
    return _counts(objected), _counts(suppressed)


def _suppression_covers(scope: str | list[str], topic: str | None) -> bool:
    return scope == "all" or (topic is not None and topic in scope)


def _counts(frame: pl.DataFrame) -> dict[Key, int]:
    return {(r["offer_code"], r["channel"]): r["n"] for r in frame.to_dicts()}


def _chunked(session: Session, ids: Sequence[str], stmt_for, schema: dict, size: int = 5000) -> pl.DataFrame:
    frames = [_frame(session, stmt_for(ids[i : i + size]), schema) for i in range(0, len(ids), size)]
    return pl.concat(frames) if frames else pl.DataFrame(schema=schema)


def quiet_hour_contacts(
    session: Session, sent: pl.DataFrame, period: Period, offers: OffersFile
) -> dict[Key, int]:
    """Contacts outside the channel's window in the customer's zone, per offer and channel."""
    rules = offers.policy.quiet_hours
    found: dict[Key, int] = {}
    timed = [sent.filter(pl.col("channel") == ch) for ch in rules if ch != "call"]
    if "call" in rules:
        stmt = (
            select(CallAttempt.id, CallTask.customer_id, CallTask.offer_code, CallAttempt.at)
            .join(CallTask, CallTask.id == CallAttempt.task_id)
            .where(CallAttempt.at >= period.start, CallAttempt.at < period.end)
        )
        schema = {
            "message_id": pl.Int64,
            "customer_id": pl.Utf8,
            "offer_code": pl.Utf8,
            "sent_at": pl.Datetime("us"),
        }
        calls = _utc(_frame(session, stmt, schema), "sent_at").with_columns(channel=pl.lit("call"))
        timed.append(calls)
    for frame in timed:
        if frame.is_empty():
            continue
        channel = frame["channel"][0]
        window = rules[channel]
        zones = _zones(session, frame["customer_id"].unique().to_list(), offers.policy.default_timezone)
        for row in frame.select("customer_id", "offer_code", "sent_at").iter_rows():
            local = as_utc(row[2]).astimezone(zones.get(row[0]) or zone(offers.policy.default_timezone))
            inside = _in_window(local.time(), window.start, window.end)
            if channel == "call":
                inside = inside and is_calling_day(local.date(), window, offers.policy.holiday_country)
            if not inside:
                key = (row[1], channel)
                found[key] = found.get(key, 0) + 1
    return found


def _in_window(at: time, start: time, end: time) -> bool:
    return start <= at < end if start < end else (at >= start or at < end)


def _zones(session: Session, ids: list[str], default: str) -> dict[str, ZoneInfo]:
    result: dict[str, ZoneInfo] = {}
    for i in range(0, len(ids), 5000):
        stmt = select(Customer.customer_id, Customer.timezone).where(
            Customer.customer_id.in_(ids[i : i + 5000])
        )
        for customer_id, tz in session.execute(stmt):
            result[customer_id] = zone(tz, default)
    return result


def opt_out_after_contact(
    session: Session, sent: pl.DataFrame, window_days: int = 30
) -> dict[Key, tuple[int, int]]:
    """(customers contacted, of whom objected within ``window_days`` after it) per offer and channel."""
    if sent.is_empty():
        return {}
    ids = sent["customer_id"].unique().to_list()
    until = as_utc(sent["sent_at"].max()) + timedelta(days=window_days)
    outs = _chunked(
        session,
        ids,
        lambda chunk: select(ConsentEvent.customer_id, ConsentEvent.recorded_at).where(
            ConsentEvent.customer_id.in_(chunk),
            ConsentEvent.choice == "opt_out",
            ConsentEvent.recorded_at < until,
        ),
        {"customer_id": pl.Utf8, "recorded_at": pl.Datetime("us")},
    )
    outs = _utc(outs, "recorded_at")
    joined = sent.join(outs, on="customer_id", how="left").with_columns(
        (
            (pl.col("recorded_at") > pl.col("sent_at"))
            & (pl.col("recorded_at") <= pl.col("sent_at") + pl.duration(days=window_days))
        )
        .fill_null(False)
        .alias("objected")
    )
    per = joined.group_by("offer_code", "channel", "customer_id").agg(pl.col("objected").any())
    grouped = per.group_by("offer_code", "channel").agg(
        pl.len().alias("customers"), pl.col("objected").sum().alias("objected")
    )
    return {(r["offer_code"], r["channel"]): (r["customers"], r["objected"]) for r in grouped.to_dicts()}
