"""Benchmark: the whole ``decide_day`` (decide, store the decisions, plan the ledger) at 100k-1M candidates.

The policy bench (bench/bench_policy.py) times reading the inputs and deciding; this one times the
whole day's plan, split into its phases, on SQLite and PostgreSQL:

- load: ``snapshot_offers`` + the already-decided filter + ``load_inputs``;
- decide: the Polars engine; campaigns: the campaign seam (the bench data has no campaign rows);
- write decisions / plan ledger: storing the decisions and creating their ledger rows;
- rerun: a second ``decide_day`` of the same day (decides nothing; checks idempotency and its cost).

Implementations: ``bulk`` is ``planning.decide_day`` as it is; ``naive`` is the same steps with the
old write (``planning_reference``: dicts + SQLAlchemy executemany, one ORM object per ledger row).
Each measurement runs in a fresh process (its own peak RSS) on a fresh copy of the data: the
policy bench's SQLite file (bench/.data/policy_<n>.db) copied, or on PostgreSQL a database cloned
from a template (``bulkwrite_plan_src_<n>``, made once from bench/policy_data.py).

    python bench/bench_plan_write.py                                # writes bench/results/plan_write.md
    python bench/bench_plan_write.py --sizes 100000 --backends sqlite --impls bulk --out /tmp/x.md
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_policy import NOW, PG_ADMIN, RUN_DATE, machine  # noqa: E402

PHASES = ("load", "decide", "campaigns", "write_decisions", "plan_ledger")


def _pg(name: str) -> str:
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"


def prepare(backend: str, size: int, data_dir: Path) -> None:
    """The pristine data for ``size``, made once: a SQLite file, or a PostgreSQL template database."""
    from sqlalchemy import create_engine, text

    from bench import bench_policy

    if backend == "sqlite":
        bench_policy.prepare("sqlite", size, data_dir)
        return
    from bench.policy_data import generate, write_postgres
    from outreach.db import upgrade

    name = f"bulkwrite_plan_src_{size}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar():
            admin.dispose()
            return
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}_partial" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}_partial"'))
    upgrade(_pg(f"{name}_partial"))
    write_postgres(_pg(f"{name}_partial").replace("+psycopg", ""), generate(size, size, RUN_DATE))
    vacuum = create_engine(_pg(f"{name}_partial"), isolation_level="AUTOCOMMIT")
    with vacuum.connect() as conn:
        conn.execute(text("VACUUM ANALYZE"))
    vacuum.dispose()
    with admin.connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{name}_partial" RENAME TO "{name}"'))
    admin.dispose()


def fresh_copy(backend: str, size: int, data_dir: Path, work: Path) -> str:
    """A writable copy of the pristine data; returns its URL."""
    from sqlalchemy import create_engine, text

    if backend == "sqlite":
        target = work / f"plan_{size}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(data_dir / f"policy_{size}.db", target)
        return _upgraded(f"sqlite:///{target}")
    name = f"bulkwrite_plan_{size}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "bulkwrite_plan_src_{size}"'))
    admin.dispose()
    return _upgraded(_pg(name))


def _upgraded(url: str) -> str:
    """The cached data may predate the newest migrations (e.g. the ledger's decision_id index)."""
    from outreach.db import upgrade

    upgrade(url)
    return url


def _naive_day(engine, offers) -> dict:
    """The old ``decide_day``, step by step, timed the same way."""
    import polars as pl
    from sqlalchemy import select

    from outreach.campaigns import seam
    from outreach.db import session_scope
    from outreach.models import Decision
    from outreach.planning import snapshot_offers
    from outreach.policy import decide, load_inputs
    from outreach_dev.planning_reference import plan_messages_naive, write_decisions_naive

    timings = {}
    t = time.perf_counter()
    snapshot_offers(engine, offers)
    inputs = load_inputs(engine, RUN_DATE, offers, NOW)
    with session_scope(engine) as session:
        stmt = select(Decision.candidate_id).where(Decision.decision_date == RUN_DATE)
        decided = set(session.scalars(stmt))
    if decided:
        inputs.candidates = inputs.candidates.filter(~pl.col("candidate_id").is_in(list(decided)))
    timings["load"], t = time.perf_counter() - t, time.perf_counter()
    frame = decide(inputs)
    timings["decide"], t = time.perf_counter() - t, time.perf_counter()
    frame = seam.apply(engine, frame, inputs)
    timings["campaigns"], t = time.perf_counter() - t, time.perf_counter()
    with session_scope(engine) as session:
        n = write_decisions_naive(session, frame, RUN_DATE, NOW)
        timings["write_decisions"], t = time.perf_counter() - t, time.perf_counter()
        planned = plan_messages_naive(session, RUN_DATE)
    timings["plan_ledger"] = time.perf_counter() - t  # includes the commit
    return {"decided": n, "planned": planned, "timings": timings}


def one(backend: str, size: int, impl: str, url: str) -> dict:
    """One measurement, in its own process."""
    from sqlalchemy import func, select

    from outreach.config import load_offers
    from outreach.db import make_engine, session_scope
    from outreach.models import Decision, Message
    from outreach.planning import decide_day

    offers = load_offers(ROOT / "offers.yaml")
    engine = make_engine(url)
    sampler = RssSampler()
    started = time.perf_counter()
    if impl == "bulk":
        report = decide_day(engine, RUN_DATE, offers, now=NOW)
        got = {"decided": report.decided, "planned": report.messages_planned, "timings": dict(report.timings)}
    else:
        got = _naive_day(engine, offers)
    total = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sampler.stop()
    write_from = started + sum(got["timings"][p] for p in PHASES[:3])
    rss_before_write = sampler.at(write_from)
    rss_write_peak = sampler.peak(write_from, started + total)
    rerun_started = time.perf_counter()
    again = decide_day(engine, RUN_DATE, offers, now=NOW)
    rerun = time.perf_counter() - rerun_started
    with session_scope(engine) as session:
        decisions = session.scalar(select(func.count()).where(Decision.decision_date == RUN_DATE))
        messages = session.scalar(select(func.count()).where(Message.run_date == RUN_DATE))
    engine.dispose()
    return {
        "backend": backend,
        "size": size,
        "impl": impl,
        **{k: round(v, 2) for k, v in got["timings"].items()},
        "total_s": round(total, 2),
        "peak_mb": round(peak),
        "rss_before_write_mb": round(rss_before_write),
        "rss_write_peak_mb": round(rss_write_peak),
        "decided": got["decided"],
        "planned": got["planned"],
        "rows": [decisions, messages],
        "rerun_s": round(rerun, 2),
        "rerun_decided": [again.decided, again.messages_planned],
    }


class RssSampler:
    """The process's resident set every 20 ms (a thread), to see what the write phases add."""

    def __init__(self) -> None:
        import threading

        self.samples: list[tuple[float, float]] = []
        self.page_mb = os.sysconf("SC_PAGE_SIZE") / 2**20
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with open("/proc/self/statm") as statm:
            while not self.done.is_set():
                statm.seek(0)
                self.samples.append((time.perf_counter(), int(statm.read().split()[1]) * self.page_mb))
                time.sleep(0.02)

    def stop(self) -> None:
        self.done.set()
        self.thread.join()

    def at(self, moment: float) -> float:
        return min(self.samples, key=lambda s: abs(s[0] - moment))[1]

    def peak(self, start: float, end: float) -> float:
        return max((mb for t, mb in self.samples if start <= t <= end), default=0.0)


def measure(backend: str, size: int, impl: str, data_dir: Path, work: Path) -> dict:
    url = fresh_copy(backend, size, data_dir, work)
    cmd = [sys.executable, __file__, "--one", backend, str(size), impl, url]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(results: list[dict], command: str, loads: tuple, out: Path) -> str:
    import polars as pl

    lines = [
        "# decide_day benchmark: decide, store the decisions, plan the ledger",
        "",
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- machine: {machine()}",
        f"- load average (1 min) before / after: {loads[0]:.2f} / {loads[1]:.2f} "
        "(other work on the machine slows every figure)",
        f"- polars {pl.__version__}; command: `{command}`",
        "- bulk = `planning.decide_day`; naive = the same steps with the old write "
        "(`outreach_dev/planning_reference.py`: `to_dicts()` + SQLAlchemy executemany per 5,000, then one "
        "ORM object per decision to plan the ledger). One run each, fresh process, fresh copy of the data.",
        "- load = offers snapshot + already-decided filter + `load_inputs`. peak MB = the process's max "
        "RSS over the whole day (the engine's peak, as in bench/results/policy.md); RSS before write / "
        "write peak = sampled every 20 ms: the resident set when the write starts and its maximum "
        "during the write and the commit. rerun = a second `decide_day` of the same day (decides 0).",
        "",
        "| backend | candidates | impl | load s | decide s | campaigns s | write decisions s | plan ledger s "
        "| total s | peak MB | RSS before write / write peak MB | decisions / messages | rerun s |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in sorted(results, key=lambda r: (r["backend"], r["size"], r["impl"] != "naive")):
        lines.append(
            f"| {r['backend']} | {r['size']:,} | {r['impl']} | "
            + " | ".join(str(r.get(p, "-")) for p in PHASES)
            + f" | {r['total_s']} | {r['peak_mb']} | {r['rss_before_write_mb']} / {r['rss_write_peak_mb']} "
            f"| {r['rows'][0]:,} / {r['rows'][1]:,} | {r['rerun_s']} |"
        )
    text = "\n".join(lines) + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--impls", default="naive,bulk")
    parser.add_argument("--data", default=str(ROOT / "bench" / ".data"))
    parser.add_argument("--work", default=str(ROOT / "bench" / ".data" / "work"))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "plan_write.md"))
    parser.add_argument("--prepare-only", action="store_true")
    parser.add_argument("--one", nargs=4, metavar=("BACKEND", "SIZE", "IMPL", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        backend, size, impl, url = args.one
        print(json.dumps(one(backend, int(size), impl, url)))
        return
    data_dir, work = Path(args.data), Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",")]
    backends = args.backends.split(",")
    for backend in backends:
        for size in sizes:
            print(f"preparing {backend} {size:,} ...", flush=True)
            prepare(backend, size, data_dir)
    if args.prepare_only:
        return
    before = os.getloadavg()[0]
    results = []
    for backend in backends:
        for size in sizes:
            for impl in args.impls.split(","):
                result = measure(backend, size, impl, data_dir, work)
                results.append(result)
                print(json.dumps(result), flush=True)
    after = os.getloadavg()[0]
    command = "python bench/bench_plan_write.py " + " ".join(sys.argv[1:])
    print(report(results, command.strip(), (before, after), Path(args.out)))


if __name__ == "__main__":
    main()
