"""Benchmark: the policy engine on 100k-1M candidates, SQLite and PostgreSQL, against a naive version.

What is measured, per backend and size, each in a fresh process (so peak memory is its own):
- engine: ``load_inputs`` (Arrow readers) + ``decide`` (Polars), wall time and peak RSS
  (the process and, on SQLite, its reader child);
- naive: the same SQL fetched through SQLAlchemy row objects + ``decide_naive`` (one Python
  loop per candidate, same rules), wall time;
- agreement: both produce identical decisions (compared row for row).

Data (bench/policy_data.py): as many customers as candidates, consent history for ~25%,
suppressions, holdings, 90 days of ledger history and "not interested" answers. Generated once
per size and kept (bench/.data/ for SQLite, database bench_policy_<n> on PostgreSQL).

    python bench/bench_policy.py                       # full run, writes bench/results/policy.md
    python bench/bench_policy.py --sizes 10000 --backends sqlite --out /tmp/x.md --data /tmp/d
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RUN_DATE = date(2026, 11, 18)
NOW = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)
PG_ADMIN = os.environ.get("OUTREACH_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _url(backend: str, size: int, data_dir: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{data_dir / f'policy_{size}.db'}"
    return PG_ADMIN.rsplit("/", 1)[0] + f"/bench_policy_{size}"


def prepare(backend: str, size: int, data_dir: Path) -> str:
    """Create and fill the benchmark database for ``size`` unless it is already there."""
    from sqlalchemy import create_engine, text

    from bench.policy_data import generate, write_postgres, write_sqlite
    from outreach.db import upgrade

    url = _url(backend, size, data_dir)
    if backend == "sqlite":
        path = data_dir / f"policy_{size}.db"
        if path.exists():
            return url
        data_dir.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        upgrade(f"sqlite:///{partial}")
        write_sqlite(str(partial), generate(size, size, RUN_DATE))
        partial.rename(path)
        return url
    name = f"bench_policy_{size}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar()
    if exists:
        check = create_engine(url)
        try:
            with check.connect() as conn:
                done = conn.execute(text("SELECT COUNT(*) FROM candidates")).scalar() == size
        except Exception:
            done = False
        check.dispose()
        if done:
            admin.dispose()
            return url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    upgrade(url)
    write_postgres(url.replace("postgresql+psycopg", "postgresql"), generate(size, size, RUN_DATE))
    with create_engine(url, isolation_level="AUTOCOMMIT").connect() as conn:
        conn.execute(text("VACUUM ANALYZE"))
    return url


def naive_load(engine, offers):
    """The same queries through SQLAlchemy row objects (the obvious way), into the engine's frames."""
    import polars as pl
    from sqlalchemy import text

    from outreach.policy import inputs as I

    day = RUN_DATE.isoformat()
    since_day = date.fromordinal(RUN_DATE.toordinal() - offers.policy.history_days(offers.offers)).isoformat()

    def rows(sql: str, schema: dict) -> pl.DataFrame:
        with engine.connect() as conn:
            fetched = [tuple(r) for r in conn.execute(text(sql))]
        return pl.DataFrame(fetched, schema=list(schema), orient="row", infer_schema_length=None)

    frames = {
        "candidates": rows(
            "SELECT id, customer_id, offer_code, score, trigger, trigger_ref FROM candidates"
            f" WHERE candidate_date = '{day}'",
            I.CANDIDATES,
        ),
        "customers": rows(
            "SELECT customer_id, mobile_valid, email_valid, address_valid, timezone FROM customers",
            I.CUSTOMERS,
        ),
        "consent": rows("SELECT customer_id, scope, choice, recorded_at, id FROM consent_events", I.CONSENT),
        "suppressions": rows(
            "SELECT customer_id, reason, valid_from, valid_until FROM suppressions"
            f" WHERE valid_from <= '{day}'"
            f" AND (valid_until IS NULL OR valid_until >= '{day}')",
            I.SUPPRESSIONS,
        ),
        "holdings": rows("SELECT customer_id, product FROM holdings", I.HOLDINGS),
        "contacts": rows(
            "SELECT customer_id, offer_code, channel, run_date, status FROM messages"
            f" WHERE run_date >= '{since_day}' AND run_date <= '{day}'",
            I.CONTACTS,
        ),
        "answers": rows(
            "SELECT m.customer_id, m.offer_code, e.occurred_at FROM delivery_events e JOIN messages m"
            " ON m.id = e.message_id WHERE e.event_type = 'replied' AND e.description = 'not_interested'",
            I.ANSWERS,
        ),
    }
    from outreach.policy.frames import _conform

    schemas = {
        "candidates": I.CANDIDATES,
        "customers": I.CUSTOMERS,
        "consent": I.CONSENT,
        "suppressions": I.SUPPRESSIONS,
        "holdings": I.HOLDINGS,
        "contacts": I.CONTACTS,
        "answers": I.ANSWERS,
    }
    typed = {name: _conform(frame, schemas[name], name) for name, frame in frames.items()}
    typed["consent"] = typed["consent"].filter(pl.col("recorded_at") <= NOW)
    return I.DayInputs(RUN_DATE, NOW, offers, **typed)


def one(backend: str, size: int, impl: str, data_dir: Path, out: Path) -> dict:
    """A single measurement (run in its own process)."""
    from outreach.config import load_offers
    from outreach.db import make_engine
    from outreach.policy import decide, load_inputs
    from outreach_dev.policy_reference import decide_naive

    offers = load_offers(ROOT / "offers.yaml")
    engine = make_engine(_url(backend, size, data_dir))
    started = time.perf_counter()
    if impl == "engine":
        inputs = load_inputs(engine, RUN_DATE, offers, NOW)
        loaded = time.perf_counter()
        decisions = decide(inputs)
    else:
        inputs = naive_load(engine, offers)
        loaded = time.perf_counter()
        decisions = decide_naive(inputs)
    done = time.perf_counter()
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
    decisions.write_parquet(out)
    engine.dispose()
    counts = {k: int(v) for k, v in decisions.group_by("outcome").len().iter_rows()}
    return {
        "backend": backend,
        "size": size,
        "impl": impl,
        "load_s": round(loaded - started, 2),
        "decide_s": round(done - loaded, 2),
        "total_s": round(done - started, 2),
        "cpu_s": round(cpu, 2),  # CPU seconds of the process and its readers, imports included
        "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "child_peak_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
        "outcomes": counts,
    }


def measure(backend: str, size: int, impl: str, data_dir: Path, work: Path) -> dict:
    out = work / f"{backend}_{size}_{impl}.parquet"
    cmd = [
        sys.executable,
        __file__,
        "--one",
        backend,
        str(size),
        impl,
        "--data",
        str(data_dir),
        "--parquet",
        str(out),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["parquet"] = str(out)
    return result


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    system = f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, {system}"


def report(results: list[dict], agreement: dict, command: str, loads: tuple, out: Path) -> str:
    import polars as pl

    lines = [
        "# Policy engine benchmark",
        "",
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- machine: {machine()}",
        f"- load average (1 min) before / after: {loads[0]:.2f} / {loads[1]:.2f} "
        "(other work on the machine slows every figure; compare within one run)",
        f"- polars {pl.__version__}; command: `{command}`",
        "- engine: the fastest of `--repeat` runs; naive: one run (so its wall time suffers most from "
        "other work on the machine: the CPU-time ratio is the steadier comparison).",
        "- engine = `load_inputs` (Arrow readers, two lanes in parallel: ADBC libpq in-process on "
        "PostgreSQL, ADBC SQLite in child processes) + `decide` (Polars); naive = the same SQL through "
        "SQLAlchemy row objects + `decide_naive` (a Python loop per candidate, same rules, used as the "
        "test oracle).",
        "- peak memory: the measuring process's max RSS / the largest reader child's (SQLite); the "
        "readers exit before the engine runs. cpu s: CPU time of the process and its readers.",
        "- storing the decisions and planning the ledger are not in this table: see "
        "[plan_write.md](plan_write.md) (`bench/bench_plan_write.py`).",
        "",
        "| backend | candidates | engine load s | engine decide s | engine total s | engine cpu s "
        "| peak MB (proc / reader) "
        "| naive load s | naive decide s | naive total s | naive cpu s | naive ÷ engine (wall / cpu) "
        "| same decisions |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    by = {(r["backend"], r["size"], r["impl"]): r for r in results}
    for backend, size in sorted({(r["backend"], r["size"]) for r in results}):
        e = by[(backend, size, "engine")]
        n = by.get((backend, size, "naive"))
        naive_cols = (
            f"{n['load_s']} | {n['decide_s']} | {n['total_s']} | {n['cpu_s']} | "
            f"{n['total_s'] / e['total_s']:.1f}× / {n['cpu_s'] / e['cpu_s']:.1f}×"
            if n
            else "- | - | - | - | -"
        )
        same = {True: "yes", False: "NO", None: "-"}[agreement.get((backend, size))]
        lines.append(
            f"| {backend} | {size:,} | {e['load_s']} | {e['decide_s']} | {e['total_s']} | {e['cpu_s']} | "
            f"{e['peak_mb']} / {e['child_peak_mb']} | {naive_cols} | {same} |"
        )
    lines += ["", "Growth of the engine's total time (relative to the smallest size measured):", ""]
    for backend in sorted({r["backend"] for r in results}):
        mine = sorted(
            (r for r in results if r["backend"] == backend and r["impl"] == "engine"), key=lambda r: r["size"]
        )
        base = mine[0]
        growth = ", ".join(
            f"{r['size']:,}: {r['total_s']} s "
            f"(×{r['total_s'] / base['total_s']:.1f} for ×{r['size'] / base['size']:.1f} candidates)"
            for r in mine
        )
        lines.append(f"- {backend}: {growth}")
    biggest = max(results, key=lambda r: r["size"])
    lines += ["", f"Outcomes at {biggest['size']:,} ({biggest['backend']}): {biggest['outcomes']}", ""]
    text = "\n".join(lines)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="100000,250000,500000,1000000")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument(
        "--naive-sizes", default=None, help="sizes to run the naive version on (default: all)"
    )
    parser.add_argument("--data", default=str(ROOT / "bench" / ".data"))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "policy.md"))
    parser.add_argument("--repeat", type=int, default=3, help="engine runs per point; the fastest counts")
    parser.add_argument("--prepare-only", action="store_true", help="generate the data and stop")
    parser.add_argument("--one", nargs=3, metavar=("BACKEND", "SIZE", "IMPL"), help=argparse.SUPPRESS)
    parser.add_argument("--parquet", help=argparse.SUPPRESS)
    args = parser.parse_args()
    data_dir = Path(args.data)
    if args.one:
        backend, size, impl = args.one
        print(json.dumps(one(backend, int(size), impl, data_dir, Path(args.parquet))))
        return

    import polars as pl

    sizes = [int(s) for s in args.sizes.split(",")]
    naive_sizes = set(
        sizes if args.naive_sizes is None else [int(s) for s in args.naive_sizes.split(",") if s]
    )
    backends = args.backends.split(",")
    for backend in backends:
        for size in sizes:
            print(f"preparing {backend} {size:,} ...", flush=True)
            prepare(backend, size, data_dir)
    if args.prepare_only:
        return
    before = os.getloadavg()[0]
    results, agreement = [], {}
    with tempfile.TemporaryDirectory() as work:
        for backend in backends:
            for size in sizes:
                # the best of a few runs: other work on a shared machine only ever adds time
                engine = min(
                    (measure(backend, size, "engine", data_dir, Path(work)) for _ in range(args.repeat)),
                    key=lambda r: r["total_s"],
                )
                results.append(engine)
                print(json.dumps({k: v for k, v in engine.items() if k != "parquet"}), flush=True)
                if size in naive_sizes:
                    naive = measure(backend, size, "naive", data_dir, Path(work))
                    results.append(naive)
                    print(json.dumps({k: v for k, v in naive.items() if k != "parquet"}), flush=True)
                    agreement[(backend, size)] = pl.read_parquet(engine["parquet"]).equals(
                        pl.read_parquet(naive["parquet"])
                    )
    after = os.getloadavg()[0]
    command = "python bench/bench_policy.py " + " ".join(sys.argv[1:])
    print(report(results, agreement, command.strip(), (before, after), Path(args.out)))
    if not all(agreement.values()):
        sys.exit("the engine and the naive implementation disagree")


if __name__ == "__main__":
    main()
