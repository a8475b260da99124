"""Benchmark: create a day's call tasks, then let agents work them concurrently (claim + outcome).

    python bench/bench_calls.py [--tasks 2000] [--agents 8] [--url postgresql+psycopg://.../empty_db]

Without --url a fresh SQLite file is used. A PostgreSQL URL must name an empty database (the
script migrates it). Prints the time of task creation and the rate of claim + outcome pairs with
N agent threads, and checks that no task was handed out twice. Results: bench/results/calls.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path

from argon2 import PasswordHasher
from sqlalchemy import insert, select

from outreach.calls import accounts, tasks
from outreach.config import load_offers
from outreach.db import make_engine, session_scope, upgrade
from outreach.models import Candidate, Customer, Decision, Message

DAY = date(2026, 11, 24)  # a Tuesday
AT = datetime(2026, 11, 24, 10, tzinfo=UTC)
OFFERS = load_offers(Path(__file__).resolve().parent.parent / "offers.yaml")


def seed(engine, n: int, agents: int) -> dict[str, int]:
    stamp = datetime.now(UTC)
    customers = [
        {
            "customer_id": f"C{i:07d}",
            "first_name": "Anna",
            "last_name": f"Klant {i}",
            "language": "nl",
            "mobile": f"+316{i:08d}",
            "mobile_valid": True,
            "email_valid": False,
            "country": "NL",
            "address_valid": False,
            "timezone": "Europe/Amsterdam",
        }
        for i in range(n)
    ]
    with session_scope(engine) as session:
        session.execute(insert(Customer), customers)
        session.execute(
            insert(Candidate),
            [
                {
                    "candidate_date": DAY,
                    "customer_id": c["customer_id"],
                    "offer_code": "INVEST_CALL",
                    "trigger": "large_balance",
                    "trigger_ref": "",
                    "score": (i % 997) / 997,
                    "source": "bench",
                }
                for i, c in enumerate(customers)
            ],
        )
        candidates = session.execute(select(Candidate.id, Candidate.customer_id)).all()
        session.execute(
            insert(Decision),
            [
                {
                    "candidate_id": cid,
                    "decision_date": DAY,
                    "customer_id": customer,
                    "offer_code": "INVEST_CALL",
                    "outcome": "planned",
                    "reason": "planned",
                    "channel": "call",
                    "decided_at": stamp,
                }
                for cid, customer in candidates
            ],
        )
        decisions = session.execute(select(Decision.id, Decision.customer_id)).all()
        session.execute(
            insert(Message),
            [
                {
                    "idempotency_key": f"{DAY}:{customer}:INVEST_CALL:call",
                    "decision_id": did,
                    "run_date": DAY,
                    "customer_id": customer,
                    "offer_code": "INVEST_CALL",
                    "channel": "call",
                    "status": "sent",
                    "attempts": 1,
                    "created_at": stamp,
                    "updated_at": stamp,
                }
                for did, customer in decisions
            ],
        )
        accounts.add_team(session, "nl-1", n, "nl")
        return {
            f"agent{i}": accounts.add_agent(session, f"agent{i}", "bench password", "nl-1").id
            for i in range(agents)
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--agents", type=int, default=8)
    parser.add_argument("--url", default=None)
    args = parser.parse_args()
    url = args.url or f"sqlite:///{Path(tempfile.mkdtemp(prefix='outreach-bench-calls-')) / 'calls.db'}"
    print(
        f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f}; python {platform.python_version()}"
    )
    print(f"database: {url.split('@')[-1]}")
    upgrade(url)
    engine = make_engine(url)
    accounts.HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # not what we measure
    agents = seed(engine, args.tasks, args.agents)

    started = time.perf_counter()
    created = tasks.create_tasks(engine, DAY, offers=OFFERS)
    print(f"create_tasks   {time.perf_counter() - started:6.2f} s  {created} tasks")

    claims: dict[str, list[int]] = {name: [] for name in agents}
    gate = threading.Barrier(len(agents))

    def work(name: str) -> None:
        gate.wait()
        while (task := tasks.claim_next(engine, agents[name], now=AT)) is not None:
            claims[name].append(task)
            tasks.record_outcome(engine, task, agents[name], "not_interested", now=AT)

    started = time.perf_counter()
    with ThreadPoolExecutor(len(agents)) as pool:
        list(pool.map(work, agents))
    took = time.perf_counter() - started
    given = [t for got in claims.values() for t in got]
    twice = sum(1 for n in Counter(given).values() if n > 1)
    print(
        f"claim+outcome  {took:6.2f} s  {len(given)} calls by {len(agents)} agents, "
        f"{len(given) / took:.0f} calls/s; handed out twice: {twice}"
    )
    spread = sorted(len(v) for v in claims.values())
    print(f"calls per agent: min {spread[0]}, max {spread[-1]}")
    engine.dispose()


if __name__ == "__main__":
    main()
