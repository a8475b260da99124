"""Benchmark: a campaign over a large audience, through the audience query, the engine and the campaign rules.

    python bench/bench_campaigns.py [--customers 100000] [--url sqlite:///...] [--workdir DIR]

Prints the time of each step; results are recorded in bench/results/campaigns.md. Customers and
holdings are written straight into a fresh database (the synthetic bank's generator is timed in
bench_data.py). A PostgreSQL URL must name an empty database (the script migrates it).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, insert, select

from outreach.campaigns import seam
from outreach.campaigns.assignment import assign
from outreach.campaigns.daily import load_campaign_candidates
from outreach.config import Settings, load_offers
from outreach.db import make_engine, session_scope, upgrade
from outreach.ledger import plan_messages
from outreach.models import Customer, Decision, Holding
from outreach.policy import decide, load_inputs

REPO = Path(__file__).resolve().parent.parent
DAY = date(2026, 11, 18)
NOW = datetime(2026, 11, 18, 6, 0, tzinfo=UTC)  # 07:00 in Amsterdam: the email send time holds
CAMPAIGN = """\
name: bench
owner: bench
offers: [SAVINGS_BOOST]
window: {start: 2026-11-01, end: 2026-11-30}
audience: {age: {min: 25, max: 67}, holds: [current_account], not_holds: [savings_account]}
channels: [email, letter]
send_times: {email: "08:30"}
budget: {daily: 1000000}
variants:
  - {name: A, percent: 50}
  - {name: B, percent: 50, templates: {email: savings_boost_rate}}
holdout_percent: 10
"""


def bank(engine, customers: int) -> None:
    rng = random.Random(1)
    rows, holdings = [], []
    for n in range(customers):
        cid = f"C{n:08d}"
        rows.append(
            {
                "customer_id": cid,
                "first_name": "Anne",
                "last_name": "Jansen",
                "language": "nl",
                "birth_date": DAY - timedelta(days=rng.randint(18 * 365, 90 * 365)),
                "mobile": "+31612345678",
                "mobile_valid": True,
                "email": f"{cid.lower()}@example.com",
                "email_valid": rng.random() > 0.05,
                "street": "Dorpsstraat",
                "house_number": "1",
                "postal_code": f"{rng.randint(1000, 9999)} AB",
                "city": "Utrecht",
                "country": "NL",
                "address_valid": True,
                "timezone": "Europe/Amsterdam",
            }
        )
        holdings.append({"customer_id": cid, "product": "current_account"})
        if rng.random() < 0.4:
            holdings.append({"customer_id": cid, "product": "savings_account"})
    with session_scope(engine) as session:
        for start in range(0, len(rows), 20_000):
            session.execute(insert(Customer), rows[start : start + 20_000])
        for start in range(0, len(holdings), 20_000):
            session.execute(insert(Holding), holdings[start : start + 20_000])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--url", default=None)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="outreach-bench-campaigns-"))
    workdir.mkdir(parents=True, exist_ok=True)
    url = args.url or f"sqlite:///{workdir / 'bench.db'}"
    if url.startswith("sqlite:///"):
        for suffix in ("", "-wal", "-shm"):
            Path(url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)
    print(
        f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f}; python {platform.python_version()}"
    )
    print(f"database: {url.split('@')[-1]}")

    ids = [f"C{n:08d}" for n in range(1_000_000)]
    begin = time.perf_counter()
    assign("bench", ids, 0.1, [("A", 50.0), ("B", 50.0)])
    print(f"assign (pure, 1,000,000 customers)   {time.perf_counter() - begin:6.2f} s")

    upgrade(url)
    engine = make_engine(url)
    bank(engine, args.customers)
    folder = workdir / "campaigns"
    folder.mkdir(exist_ok=True)
    (folder / "bench.yaml").write_text(CAMPAIGN, encoding="utf-8")
    offers = load_offers(REPO / "offers.yaml")
    settings = Settings(
        database_url=url,
        offers_file=REPO / "offers.yaml",
        templates_dir=REPO / "templates",
        campaigns_dir=folder,
    )

    steps: list[tuple[str, float, str]] = []

    def step(name: str, started: float, note: str = "") -> float:
        took = time.perf_counter() - started
        steps.append((name, took, note))
        print(f"{name:40} {took:6.2f} s  {note}")
        return time.perf_counter()

    t = time.perf_counter()
    loaded = load_campaign_candidates(engine, settings, DAY)
    t = step("audience query -> candidates", t, f"{loaded['loaded']:,} candidates")
    inputs = load_inputs(engine, DAY, offers, NOW)
    t = step("load decision inputs", t)
    frame = decide(inputs)
    t = step("engine decide()", t)
    frame = seam.apply(engine, frame, inputs)
    t = step("campaign rules (seam.apply)", t, str(dict(frame.group_by("reason").len().iter_rows())))
    rows = [{**row, "decision_date": DAY, "decided_at": NOW} for row in frame.to_dicts()]
    with session_scope(engine) as session:
        for start in range(0, len(rows), 5000):
            session.execute(insert(Decision), rows[start : start + 5000])
        planned = plan_messages(session, DAY)
    t = step("store decisions + plan ledger", t, f"{planned:,} messages")
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(Decision)) == loaded["loaded"]
    print(f"total {sum(s[1] for s in steps):.2f} s for {args.customers:,} customers")


if __name__ == "__main__":
    main()
