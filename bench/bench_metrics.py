"""The ledger part of a `/metrics` scrape: messages by channel and status over the last plan days.

    python bench/bench_metrics.py [--per-day 150000] [--days 30] [--window 7] [--db sqlite|postgresql]

Seeds ``--days`` plan days of ``--per-day`` messages each (mixed channels and statuses) in a fresh
database, then times LedgerCollector.collect() (the query a scrape runs) over a ``--window``-day
window: first scrape, then the median of 9.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sqlalchemy import insert  # noqa: E402

from bench.bench_webhooks import database  # noqa: E402
from outreach.db import make_engine, session_scope, upgrade  # noqa: E402
from outreach.models import Message  # noqa: E402
from outreach.web.metrics import LedgerCollector  # noqa: E402

LAST_DAY = date(2026, 11, 18)
CHANNELS = ("sms", "email", "email", "letter", "call")
STATUSES = ("delivered", "delivered", "sent", "failed", "planned", "undelivered", "bounced")


def seed(url: str, per_day: int, days: int) -> None:
    upgrade(url)
    stamp = datetime(2026, 11, 18, 10, tzinfo=UTC)
    engine = make_engine(url)
    for back in range(days):
        day = LAST_DAY - timedelta(days=back)
        rows = [
            {
                "idempotency_key": f"{day}:{n}",
                "run_date": day,
                "customer_id": f"B{n:08d}",
                "offer_code": "BENCH",
                "channel": CHANNELS[n % len(CHANNELS)],
                "status": STATUSES[n % len(STATUSES)],
                "attempts": 1,
                "created_at": stamp,
                "updated_at": stamp,
            }
            for n in range(per_day)
        ]
        with session_scope(engine) as session:
            session.execute(insert(Message), rows)
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-day", type=int, default=150_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--window", type=int, default=7)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()
    url, drop = database(args.db)
    try:
        started = time.perf_counter()
        seed(url, args.per_day, args.days)
        print(f"seeded {args.per_day * args.days:,} messages in {time.perf_counter() - started:.1f} s")
        engine = make_engine(url)
        if args.db == "postgresql":  # autovacuum would do this soon after a load; index-only scans need it
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE messages")
        collector = LedgerCollector(lambda: engine, args.window, lambda: LAST_DAY)
        timings = []
        for _ in range(10):
            started = time.perf_counter()
            families = list(collector.collect())
            timings.append(time.perf_counter() - started)
        counted = sum(sample.value for sample in families[0].samples)
        assert counted == args.per_day * min(args.window, args.days), counted
        print(
            f"{args.db}: {counted:,.0f} messages in the {args.window}-day window of "
            f"{args.per_day * args.days:,}; first scrape {timings[0] * 1000:.0f} ms, "
            f"median of 9 {statistics.median(timings[1:]) * 1000:.0f} ms "
            f"({platform.machine()}, Python {platform.python_version()})"
        )
        engine.dispose()
    finally:
        drop()


if __name__ == "__main__":
    main()
