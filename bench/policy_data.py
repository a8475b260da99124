"""Synthetic but realistic data for the policy benchmark, generated set-based with Polars.

Shapes (per 1,000,000 customers): ~1M candidates (most customers one, some two or three), consent
history for about a quarter of the customers (opt-outs, some later opt-ins, channel and topic
scopes), ~3% on a suppression list (some expired, some not yet valid), ~1.2M product holdings,
~1.2M ledger messages over the last 90 days and ~1% "not interested" call answers. Every value
comes from a hash of the row number and a seed, so a run is reproducible without numpy.
"""

from __future__ import annotations

import io
import sqlite3
from datetime import UTC, date, datetime, timedelta

import polars as pl

OFFERS = {  # code -> (product, topic, channels)
    "KIDS_SAVINGS": ("childrens_savings", "savings", ["email", "sms", "letter"]),
    "INVEST_CALL": ("investment_account", "investing", ["call", "email"]),
    "SAVINGS_BOOST": ("savings_account", "savings", ["email", "letter"]),
    "TRAVEL_INSURANCE": ("travel_insurance", "insurance", ["sms", "email"]),
    "CREDIT_CARD": ("credit_card", "credit", ["email", "letter"]),
}
CODES = list(OFFERS)
PRODUCTS = [p for p, _, _ in OFFERS.values()]
ZONES = ["Europe/Amsterdam"] * 97 + ["Europe/London", "America/New_York", "Asia/Tokyo"]
SCOPES = ["all", "sms", "email", "letter", "phone", "topic:credit", "topic:investing", "topic:insurance"]
SUPPRESSION_REASONS = ["vulnerable", "arrears", "deceased", "minor", "complaint"]
MESSAGE_STATUSES = ["delivered"] * 14 + ["sent"] * 3 + ["failed", "bounced", "cancelled"]


def _rand(n: int, seed: int, modulo: int) -> pl.Expr:
    """A reproducible pseudo-random integer in [0, modulo) per row."""
    return (pl.int_range(n, dtype=pl.UInt64).hash(seed) % modulo).cast(pl.Int64)


def _pick(options: list, index: pl.Expr) -> pl.Expr:
    return pl.lit(pl.Series(options)).gather(index)


def cid(expr: pl.Expr) -> pl.Expr:
    return pl.lit("C") + expr.cast(pl.Utf8).str.zfill(8)


def generate(customers: int, candidates: int, run_date: date, seed: int = 7) -> dict[str, pl.DataFrame]:
    n = customers
    base = pl.DataFrame({"i": pl.int_range(n, eager=True)})
    cust = base.select(
        customer_id=cid(pl.col("i")),
        first_name=pl.lit("Anne"),
        last_name=pl.lit("Jansen"),
        language=_pick(["nl", "nl", "nl", "en"], _rand(n, seed + 1, 4)),
        mobile=pl.lit("+3161") + (pl.col("i") % 10_000_000).cast(pl.Utf8).str.zfill(7),
        mobile_valid=_rand(n, seed + 2, 100) < 90,
        email=pl.lit("c") + pl.col("i").cast(pl.Utf8) + pl.lit("@example.nl"),
        email_valid=_rand(n, seed + 3, 100) < 80,
        street=pl.lit("Dorpsstraat"),
        house_number=(pl.col("i") % 200 + 1).cast(pl.Utf8),
        postal_code=pl.lit("1234 AB"),
        city=pl.lit("Utrecht"),
        country=pl.lit("NL"),
        address_valid=_rand(n, seed + 4, 100) < 97,
        timezone=_pick(ZONES, _rand(n, seed + 5, len(ZONES))),
    )

    # candidates: a random customer each (so some have two or three, many none), a random offer
    m = candidates
    cand = pl.DataFrame({"i": pl.int_range(m, eager=True)}).select(
        id=pl.col("i") + 1,
        candidate_date=pl.lit(run_date),
        customer_id=cid(_rand(m, seed + 10, n)),
        offer_code=_pick(CODES, _rand(m, seed + 11, len(CODES))),
        trigger=pl.lit("bench"),
        trigger_ref=pl.lit("tx-") + pl.col("i").cast(pl.Utf8),
        score=(_rand(m, seed + 12, 1000).cast(pl.Float64) / 1000),
        source=pl.lit("bench"),
    )

    # consent history: ~25% of customers, 1-3 events each, within the last two years
    k = n * 4 // 10
    consent = (
        pl.DataFrame({"i": pl.int_range(k, eager=True)})
        .select(
            customer_id=cid(_rand(k, seed + 20, n * 10 // 16)),  # concentrated on fewer customers
            scope=_pick(SCOPES, _rand(k, seed + 21, len(SCOPES))),
            choice=pl.when(_rand(k, seed + 22, 100) < 80).then(pl.lit("opt_out")).otherwise(pl.lit("opt_in")),
            source=pl.lit("bench"),
            recorded_at=pl.lit(datetime(2026, 1, 1, tzinfo=UTC))
            - pl.duration(minutes=_rand(k, seed + 23, 2 * 365 * 24 * 60)),
        )
        .with_row_index("id", offset=1)
    )

    s = n * 3 // 100
    suppressions = (
        pl.DataFrame({"i": pl.int_range(s, eager=True)})
        .select(
            customer_id=cid(_rand(s, seed + 30, n)),
            reason=_pick(SUPPRESSION_REASONS, _rand(s, seed + 31, len(SUPPRESSION_REASONS))),
            valid_from=pl.lit(run_date) - pl.duration(days=_rand(s, seed + 32, 700) - 30),
            valid_until=pl.when(_rand(s, seed + 33, 3) == 0)
            .then(pl.lit(run_date) + pl.duration(days=_rand(s, seed + 34, 400) - 200))
            .otherwise(None),
        )
        .with_columns(pl.col("valid_from").cast(pl.Date), pl.col("valid_until").cast(pl.Date))
        .with_row_index("id", offset=1)
    )

    h = n * 12 // 10
    holdings = (
        pl.DataFrame({"i": pl.int_range(h, eager=True)})
        .select(
            customer_id=cid(_rand(h, seed + 40, n)),
            product=_pick(PRODUCTS + ["current_account"] * 3, _rand(h, seed + 41, len(PRODUCTS) + 3)),
            opened_at=pl.lit(date(2020, 1, 1)),
        )
        .unique(["customer_id", "product"], keep="first", maintain_order=True)
        .with_row_index("id", offset=1)
    )

    # 90 days of ledger history
    g = n * 12 // 10
    stamp = datetime.combine(run_date, datetime.min.time(), tzinfo=UTC)
    messages = (
        pl.DataFrame({"i": pl.int_range(g, eager=True)})
        .select(
            customer_id=cid(_rand(g, seed + 50, n)),
            offer_code=_pick(CODES, _rand(g, seed + 51, len(CODES))),
            channel=_pick(["email", "email", "sms", "letter", "call"], _rand(g, seed + 52, 5)),
            status=_pick(MESSAGE_STATUSES, _rand(g, seed + 53, len(MESSAGE_STATUSES))),
            run_date=(pl.lit(run_date) - pl.duration(days=_rand(g, seed + 54, 90) + 1)).cast(pl.Date),
        )
        .unique(["run_date", "customer_id", "offer_code", "channel"], keep="first", maintain_order=True)
        .with_row_index("id", offset=1)
        .with_columns(
            idempotency_key=pl.col("run_date").cast(pl.Utf8)
            + ":"
            + pl.col("customer_id")
            + ":"
            + pl.col("offer_code")
            + ":"
            + pl.col("channel"),
            decision_id=pl.lit(None, dtype=pl.Int64),
            attempts=pl.lit(1),
            created_at=pl.lit(stamp),
            updated_at=pl.lit(stamp),
        )
    )

    # "not interested" call answers on ~1% of the messages (the policy's outcome rule)
    answered = messages.filter(pl.col("id") % 97 == 0)
    events = answered.select(
        message_id=pl.col("id"),
        channel=pl.col("channel"),
        provider=pl.lit("callcentre"),
        provider_event_id=pl.lit("ni-") + pl.col("id").cast(pl.Utf8),
        event_type=pl.lit("replied"),
        description=pl.lit("not_interested"),
        occurred_at=pl.col("run_date").cast(pl.Datetime("us", "UTC")) + pl.duration(hours=14),
        received_at=pl.col("run_date").cast(pl.Datetime("us", "UTC")) + pl.duration(hours=14),
    ).with_row_index("id", offset=1)

    return {
        "customers": cust,
        "consent_events": consent,
        "suppressions": suppressions,
        "holdings": holdings,
        "candidates": cand,
        "messages": messages,
        "delivery_events": events,
    }


ORDER = [
    "customers",
    "consent_events",
    "suppressions",
    "holdings",
    "candidates",
    "messages",
    "delivery_events",
]


def write_sqlite(path: str, frames: dict[str, pl.DataFrame]) -> None:
    """Bulk insert with executemany in one transaction (the file must already be migrated)."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous=OFF")
    try:
        for table in ORDER:
            frame = frames[table]
            frame = frame.with_columns(
                [
                    pl.col(c).cast(pl.Utf8)
                    for c, t in frame.schema.items()
                    if t in (pl.Date,) or t == pl.Datetime
                ]
            )
            frame = frame.with_columns(
                [
                    pl.col(c).dt.strftime("%Y-%m-%d %H:%M:%S.%f").alias(c)
                    for c, t in frame.schema.items()
                    if isinstance(t, pl.Datetime)
                ]
            )
            cols = ", ".join(frame.columns)
            marks = ", ".join("?" * len(frame.columns))
            for chunk in frame.iter_slices(200_000):
                conn.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", chunk.iter_rows())
        conn.commit()
        conn.execute("ANALYZE")
    finally:
        conn.close()


def write_postgres(dsn: str, frames: dict[str, pl.DataFrame]) -> None:
    """COPY each frame in as CSV (the database must already be migrated)."""
    import psycopg

    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        for table in ORDER:
            frame = frames[table]
            buffer = io.BytesIO()
            frame.write_csv(buffer, include_header=False, datetime_format="%Y-%m-%d %H:%M:%S%.f+00")
            cols = ", ".join(frame.columns)
            with cur.copy(f"COPY {table} ({cols}) FROM STDIN WITH (FORMAT csv)") as copy:
                copy.write(buffer.getvalue())
            if "id" in frame.columns:
                cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {frame.height + 1})")
        conn.commit()
        cur.execute("ANALYZE")


def days_before(day: date, n: int) -> date:
    return day - timedelta(days=n)
