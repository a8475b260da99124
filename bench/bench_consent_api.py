"""Consent writes through the API into `outreach serve` (uvicorn, its own process), end to end.

    python bench/bench_consent_api.py [--changes 5000] [--clients 16] [--workers 2] [--db postgresql|sqlite]

Seeds a fresh database with customers and one API client, starts ``outreach serve``, then sends
``--changes`` PUTs (global switch, a channel or a topic; opt_out/opt_in alternating per customer),
each with its own Idempotency-Key, from ``--clients`` connections at once (the bank's systems call in
parallel). Every request is authenticated, rate-limited, checked, idempotent and committed before
it is answered. Prints the rate and latency percentiles, and checks that every change is stored.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
from sqlalchemy import func, insert, select  # noqa: E402

from bench.bench_webhooks import database, start_serve  # noqa: E402
from outreach import api_clients  # noqa: E402
from outreach.db import make_engine, session_scope, upgrade  # noqa: E402
from outreach.models import ConsentEvent, Customer  # noqa: E402

SCOPES = ["global", "channels/email", "channels/sms", "topics/credit", "topics/savings", "channels/phone"]


def seed(url: str, customers: int) -> str:
    upgrade(url)
    engine = make_engine(url)
    rows = [
        {"customer_id": f"B{n:07d}", "first_name": "A", "last_name": "B", "birth_date": date(1980, 1, 1)}
        for n in range(customers)
    ]
    with session_scope(engine) as session:
        session.execute(insert(Customer), rows)
        key = api_clients.create(session, "bench", ["consent:read", "consent:write"], "100000/second")
    engine.dispose()
    return key


def serve(url: str, workers: int) -> tuple[subprocess.Popen, str]:
    # the server's errors, if any, for a look afterwards
    log = open(os.environ.get("BENCH_SERVER_LOG", "/tmp/bench-consent-server.log"), "w")  # noqa: SIM115
    return start_serve({"OUTREACH_DATABASE_URL": url}, workers, stderr=log)


def server_cpu_seconds(root: int) -> float:
    """User + system CPU of ``outreach serve`` and its worker processes so far (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    family, grew = {root}, True
    while grew:
        more = {pid for pid, (parent, _) in stats.items() if parent in family} - family
        family |= more
        grew = bool(more)
    return sum(stats[pid][1] for pid in family if pid in stats) / ticks


def run(base: str, key: str, changes: int, clients: int, customers: int) -> tuple[float, list[float], int]:
    """(seconds, latencies in ms, changes recorded) for ``changes`` PUTs over ``clients`` connections."""
    local = threading.local()
    headers = {"Authorization": f"Bearer {key}"}

    def one(n: int) -> tuple[float, bool]:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(base_url=base, headers=headers, timeout=30)
        customer = f"B{n % customers:07d}"
        scope = SCOPES[(n // customers) % len(SCOPES)]
        choice = "opt_out" if (n // (customers * len(SCOPES))) % 2 == 0 else "opt_in"
        started = time.perf_counter()
        response = client.put(
            f"/api/consent/v1/customers/{customer}/{scope}",
            json={"choice": choice, "source": "bench"},
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise SystemExit(f"request {n}: {response.status_code} {response.text[:200]}")
        return elapsed, response.json()["changed"]

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(one, range(changes)))
    seconds = time.perf_counter() - started
    return seconds, [r[0] for r in results], sum(r[1] for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--db", choices=["postgresql", "sqlite"], default="postgresql")
    args = parser.parse_args()
    url, drop = database(args.db)
    process = None
    try:
        key = seed(url, args.customers)
        process, base = serve(url, args.workers)
        run(base, key, min(500, args.changes), args.clients, args.customers)  # warm-up: pools, imports
        engine = make_engine(url)
        with session_scope(engine) as session:
            before = session.scalar(select(func.count()).select_from(ConsentEvent))
        cpu_before = server_cpu_seconds(process.pid)
        seconds, latencies, changed = run(base, key, args.changes, args.clients, args.customers)
        server_cpu_ms = (server_cpu_seconds(process.pid) - cpu_before) * 1000 / args.changes
        with session_scope(engine) as session:
            stored = session.scalar(select(func.count()).select_from(ConsentEvent)) - before
        engine.dispose()
        if stored != changed:
            raise SystemExit(f"{changed} changes answered, {stored} stored")
        cuts = statistics.quantiles(latencies, n=100)
        print(
            f"{args.db}: {args.changes} changes, {args.clients} connections, {args.workers} workers: "
            f"{seconds:.2f} s, {args.changes / seconds:.0f} changes/s, latency p50 {cuts[49]:.1f} ms, "
            f"p95 {cuts[94]:.1f} ms, p99 {cuts[98]:.1f} ms, max {max(latencies):.1f} ms; "
            f"server CPU {server_cpu_ms:.2f} ms/change "
            f"({stored} events stored; {platform.machine()}, {os.cpu_count()} cores, "
            f"load {os.getloadavg()[0]:.1f})"
        )
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=20)
        drop()


if __name__ == "__main__":
    main()
