"""Benchmark: generate the synthetic bank, import it, derive a day's candidates from its payments.

    python bench/bench_data.py [--customers 10000] [--url sqlite:///...] [--workdir DIR]

Prints the time of each step and the rows handled; results are recorded in bench/results/data.md.
Without --url, a fresh SQLite file in the work folder is used. A PostgreSQL URL must name an
empty database (the script migrates it).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from datetime import date
from pathlib import Path

from outreach.candidates import PaymentSignals, load_candidates
from outreach.db import make_engine, upgrade
from outreach.importer import import_file
from outreach_dev.synth import generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--as-of", type=date.fromisoformat, default=date(2026, 11, 20))
    parser.add_argument("--url", default=None)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="outreach-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(workdir / "bank", ignore_errors=True)
    url = args.url or f"sqlite:///{workdir / 'bench.db'}"
    if url.startswith("sqlite:///"):
        for suffix in ("", "-wal", "-shm"):
            Path(url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)
    print(
        f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f}; python {platform.python_version()}"
    )
    print(f"database: {url.split('@')[-1]}")

    upgrade(url)
    engine = make_engine(url)
    started = time.perf_counter()
    summary = generate(workdir / "bank", customers=args.customers, seed=args.seed, as_of=args.as_of)
    generated = time.perf_counter()
    print(f"generate  {generated - started:6.2f} s  {summary.rows}")
    total_import = 0.0
    for kind, path in summary.paths().items():
        begin = time.perf_counter()
        report = import_file(engine, kind, path)
        took = time.perf_counter() - begin
        total_import += took
        rate = report.rows_read / took if took else 0
        print(
            f"import    {took:6.2f} s  {kind}: {report.rows_read} rows ({rate:,.0f} rows/s), "
            f"{report.rejected} rejected"
        )
    begin = time.perf_counter()
    loaded = load_candidates(engine, args.as_of, PaymentSignals(engine))
    derived = time.perf_counter() - begin
    print(f"signals   {derived:6.2f} s  {loaded.loaded} candidates for {args.as_of}")
    print(f"total     {generated - started + total_import + derived:6.2f} s  (generate + import + signals)")
    begin = time.perf_counter()
    again = import_file(engine, "transactions", summary.paths()["transactions"])
    print(
        f"re-import {time.perf_counter() - begin:6.2f} s  transactions: {again.inserted} new, "
        f"{again.already_present} already present"
    )
    engine.dispose()


if __name__ == "__main__":
    main()
