"""One day end to end at N customers: Prefect's embedded default vs a Prefect server on PostgreSQL
with two workers; wall time per stage and Prefect's own share.

    python bench/bench_scale.py [--customers 100000] [--workdir /tmp/outreach-scale]
                                [--setups embedded,cluster] [--shards 3] [--keep]

The bank is ``outreach_dev.synth`` at N customers (90 days of payments), imported once into a SQLite
file and a PostgreSQL template database (cached in --workdir / kept with --keep); the day's
candidates come from the payment signals, as `make demo` does. Every setup runs on a fresh copy.
SMS and email go through the real Twilio and SendGrid SDKs to the local provider servers
(``outreach fake-providers``, their own process); letters are PDFs, calls a CSV list.

Setups, each also run *without Prefect* on another copy (the same core calls, the same
4-thread batch pool, in one plain process) — the baseline that gives Prefect's share:

* embedded: SQLite ledger, ``daily_outreach`` called in-process on Prefect's ephemeral server
  (what `outreach run` / `make demo` do);
* cluster: PostgreSQL ledger, Prefect server on PostgreSQL, ``prefect deploy --all``, two process
  workers (2 flow-run slots each), the daily deployment with ``shards`` dispatch-shard runs, the
  shared rate limits enabled (set high, so they cost but do not bind).

Stage times come from the task runs Prefect recorded (Running → Completed), or from the plain
runner's own clock; "Prefect overhead" = total wall time − the stages on the critical path
(candidates, decisions, reconciliation, dispatch from its first batch to its last, funnel and
artifact, final check): process start, imports, the ephemeral server, flow and task
orchestration, workers picking runs up.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.chdir(REPO)
import flows  # noqa: E402,F401 - the project's Prefect settings (prefect.toml) before Prefect loads

DAY = date(2026, 11, 20)
PG_ADMIN = os.environ.get("OUTREACH_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SID, TOKEN, KEY, SENDER = "AC" + "0" * 32, "test-auth-token", "SG.test-key", "+3197010000001"
HIGH_LIMIT = (100_000, 100_000.0)  # burst, per second: enabled but never binding


def log(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", flush=True)


# -- the bank, once -----------------------------------------------------------------------------


def prepare(workdir: Path, customers: int) -> tuple[Path, str]:
    """The imported bank as a SQLite file and a PostgreSQL template database (both cached)."""
    from sqlalchemy import create_engine, text

    from outreach.db import make_engine, upgrade
    from outreach.importer import import_directory
    from outreach_dev.synth import generate

    bank = workdir / f"bank-{customers}"
    sqlite_file = workdir / f"bank-{customers}.db"
    template = f"outreach_scale_bank_{customers}"
    if not (bank / "customers.csv").exists():
        log(f"generating {customers:,} customers")
        generate(bank, customers=customers, seed=1, as_of=DAY)
    if not sqlite_file.exists():
        log("importing into SQLite")
        partial = sqlite_file.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        url = f"sqlite:///{partial}"
        upgrade(url)
        engine = make_engine(url)
        import_directory(engine, bank)
        engine.dispose()
        partial.rename(sqlite_file)
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": template}).first()
        done = (
            exists
            and conn.execute(
                text("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = :n"),
                {"n": template},
            ).scalar_one()
        )
    if not done:
        log("importing into PostgreSQL")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{template}"'))
        url = PG_ADMIN.rsplit("/", 1)[0] + f"/{template}"
        upgrade(url)
        engine = make_engine(url)
        import_directory(engine, bank)
        engine.dispose()
        with admin.connect() as conn:  # the mark that the import finished
            conn.execute(text(f"COMMENT ON DATABASE \"{template}\" IS 'complete'"))
    admin.dispose()
    for url in (f"sqlite:///{sqlite_file}", PG_ADMIN.rsplit("/", 1)[0] + f"/{template}"):
        upgrade(url)  # a cached bank follows the schema of this checkout
    return sqlite_file, template


def pg_copy(template: str, name: str) -> str:
    from sqlalchemy import create_engine, text

    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    admin.dispose()
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"


def pg_drop(name: str) -> None:
    from sqlalchemy import create_engine, text

    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def outreach_env(workdir: Path, db_url: str, twilio: str, sendgrid: str, rate_limits: bool) -> dict:
    import yaml

    offers = yaml.safe_load((REPO / "offers.yaml").read_text())
    offers["policy"]["quiet_hours"] = {}  # the benchmark runs at any hour
    (workdir / "offers.yaml").write_text(yaml.safe_dump(offers))
    return {
        "OUTREACH_DATABASE_URL": db_url,
        "OUTREACH_OFFERS_FILE": str(workdir / "offers.yaml"),
        "OUTREACH_TEMPLATES_DIR": str(REPO / "templates"),
        "OUTREACH_OUTBOX_DIR": str(workdir / "outbox"),
        "OUTREACH_RATE_LIMITS": "true" if rate_limits else "false",
        "OUTREACH_UNSUBSCRIBE_SECRET": "scale-test-secret",  # signed one-click links in every mail
        "OUTREACH_SMS_BACKEND": "twilio",
        "TWILIO_ACCOUNT_SID": SID,
        "TWILIO_AUTH_TOKEN": TOKEN,
        "OUTREACH_TWILIO_FROM": SENDER,
        "OUTREACH_TWILIO_API_URL": twilio,
        "OUTREACH_EMAIL_BACKEND": "sendgrid",
        "SENDGRID_API_KEY": KEY,
        "OUTREACH_EMAIL_FROM": "aanbod@bank.example",
        "OUTREACH_SENDGRID_API_URL": sendgrid,
    }


# -- children: one setup each, in its own process -----------------------------------------------


def child_plain() -> dict:
    """The day without Prefect: the same core calls as the flow, the same interleaved 4-thread
    batch pool, timed by our own clock (from before its imports, like the flow's total)."""
    started = time.time()
    from channels import KINDS
    from outreach.batches import due_batches
    from outreach.calls.tasks import create_tasks
    from outreach.channel_setup import open_channel
    from outreach.completion import unfinished
    from outreach.config import get_settings, load_offers
    from outreach.db import engine_for, session_scope
    from outreach.dispatch import Dispatcher
    from outreach.funnel import compute
    from outreach.planning import decide_day
    from outreach.printing import build_print_batches
    from outreach.sending import reconcile_in_doubt
    from outreach.steps import load_day_candidates

    settings = get_settings()
    engine = engine_for(settings.database_url)
    spans: list[tuple[str, float, float]] = []

    def timed(name, fn, *args):
        begin = time.time()
        result = fn(*args)
        spans.append((name, begin, time.time()))
        return result

    def dispatcher(channel, adapter, worker):
        return Dispatcher(engine, settings, load_offers(settings.offers_file), adapter, worker)

    def batch(channel, ids, n):
        adapter = open_channel(settings, channel)
        try:
            return timed(
                f"dispatch-{channel}-{n}", dispatcher(channel, adapter, f"plain:{channel}-{n}").send_ids, ids
            )
        finally:
            adapter.close()

    def reconcile(channel):
        adapter = open_channel(settings, channel)
        try:
            return reconcile_in_doubt(dispatcher(channel, adapter, "plain:reconcile"), DAY)
        finally:
            adapter.close()

    loaded = timed("load-candidates", load_day_candidates, engine, settings, DAY, None)
    plan = timed("decide", decide_day, engine, DAY, load_offers(settings.offers_file))
    for channel in KINDS:
        timed(f"reconcile-{channel}", reconcile, channel)
    now = datetime.now(UTC)
    queues = {c: due_batches(engine, DAY, c, now, settings.batch_size) for c in KINDS}
    with ThreadPoolExecutor(4) as pool:
        futures = [
            pool.submit(batch, channel, queue[n], n)
            for n in range(max(len(q) for q in queues.values()))
            for channel, queue in queues.items()
            if n < len(queue)
        ]
        sent = sum(f.result().sent for f in futures)
    timed("call-tasks", create_tasks, engine, DAY)
    timed("print-batches", build_print_batches, settings.outbox_dir, DAY, settings.letter_batch_size)
    timed("funnel", compute, engine, DAY)
    with session_scope(engine) as session:
        left = timed("unfinished", unfinished, session, DAY, datetime.now(UTC), settings.carry_days)
    total = time.time() - started
    return {
        "total": total,
        "spans": spans,
        "candidates": loaded["loaded"],
        "planned": plan.messages_planned,
        "sent": sent,
        "left": left,
    }


def child_embedded() -> dict:
    """The flow called in this process, on Prefect's ephemeral server (`outreach run`)."""
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    started = time.time()
    from flows.daily import daily_outreach

    imported = time.time()
    result = daily_outreach(run_date=DAY.isoformat())
    total = time.time() - started
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    async def spans():
        """This call's flow runs (the daily run and its dispatch-due subflow) and their task runs."""
        async with get_client() as client:
            runs = [
                r
                for r in await client.read_flow_runs(limit=200)
                if r.start_time and r.start_time.timestamp() >= started
            ]
            daily = next(r for r in runs if r.name == f"daily-outreach-{DAY.isoformat()}")
            only = FlowRunFilter(id=FlowRunFilterId(any_=[r.id for r in runs]))
            tasks, offset = [], 0
            while True:
                page = await client.read_task_runs(flow_run_filter=only, limit=200, offset=offset)
                tasks += page
                if len(page) < 200:
                    return daily, tasks
                offset += 200

    flow, tasks = asyncio.run(spans())
    return {
        "total": total,
        "import": imported - started,
        "flow_start": flow.start_time.timestamp() - started,
        "spans": [(t.name, t.start_time.timestamp(), t.end_time.timestamp()) for t in tasks if t.end_time],
        "task_runs": len(tasks),
        "dispatch": result["dispatch"],
        "planned": result["plan"]["messages_planned"],
        "candidates": result["candidates"]["loaded"],
    }


def child_limiter(count: int) -> dict:
    """The shared limiter's cost: ``count`` acquisitions of 500 slots on a limit that never binds."""
    from flows.limits import PrefectRateLimits

    limiter = PrefectRateLimits("outreach-")
    limiter.check()
    took = []
    for _ in range(count):
        begin = time.perf_counter()
        limiter.acquire("sms", 500)
        took.append(time.perf_counter() - begin)
    took.sort()
    return {
        "calls": count,
        "median_ms": 1000 * took[count // 2],
        "p95_ms": 1000 * took[int(count * 0.95)],
        "mean_ms": 1000 * sum(took) / count,
        "max_ms": 1000 * took[-1],
    }


def child_contend(seconds: float, threads: int, size: int) -> dict:
    """``threads`` threads taking ``size`` slots of ``fidelity-sms`` again and again for ``seconds``."""
    from concurrent.futures import ThreadPoolExecutor as Pool

    from flows.limits import PrefectRateLimits

    limiter = PrefectRateLimits("fidelity-", channels=("sms",))
    limiter.check()
    deadline = time.time() + seconds
    grants: list[float] = []

    def loop() -> None:
        while time.time() < deadline:
            limiter.acquire("sms", size)
            grants.append(time.time())

    with Pool(threads) as pool:
        for future in [pool.submit(loop) for _ in range(threads)]:
            future.result()
    return {"grants": grants, "size": size}


def child_decide(candidates_file: str | None) -> dict:
    """Candidates (payment signals, or a file drop) and decisions of the day in one plain process:
    seconds and peak memory, to see how the two single-process stages grow with the candidates."""
    started = time.time()
    from outreach.config import get_settings, load_offers
    from outreach.db import engine_for
    from outreach.planning import decide_day
    from outreach.steps import load_day_candidates

    settings = get_settings()
    engine = engine_for(settings.database_url)
    begin = time.time()
    loaded = load_day_candidates(engine, settings, DAY, candidates_file)
    loaded_at = time.time()
    rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    plan = decide_day(engine, DAY, load_offers(settings.offers_file))
    return {
        "candidates": loaded["loaded"],
        "load_seconds": loaded_at - begin,
        "decide_seconds": time.time() - loaded_at,
        "planned": plan.messages_planned,
        "rss_after_load_mb": rss_loaded,
        "imports_seconds": begin - started,
    }


def decisions(workdir: Path, sqlite_file: Path, per_customer: tuple[int, ...] = (2, 4)) -> dict:
    """The payment-signal day, then file drops of ``k`` candidates for every customer (k × N)."""
    import csv

    from sqlalchemy import create_engine, text

    offers = ["KIDS_SAVINGS", "SAVINGS_BOOST", "TRAVEL_INSURANCE", "CREDIT_CARD", "INVEST_CALL"]
    engine = create_engine(f"sqlite:///{sqlite_file}")
    with engine.connect() as conn:
        customers = [r[0] for r in conn.execute(text("SELECT customer_id FROM customers ORDER BY 1"))]
    engine.dispose()
    results = {}
    for k in (0, *per_customer):
        folder = workdir / f"decide-{k}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        shutil.copy(sqlite_file, folder / "run.db")
        drop = None
        if k:
            drop = folder / "candidates.csv"
            with drop.open("w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(
                    ["customer_id", "offer_code", "trigger", "trigger_ref", "score", "candidate_date"]
                )
                for n, cid in enumerate(customers):
                    for j in range(k):
                        writer.writerow(
                            [cid, offers[(n + j) % 5], "drop", f"d{n}-{j}", "0.5", DAY.isoformat()]
                        )
        env = {
            **{key: v for key, v in os.environ.items() if not key.startswith(("PREFECT_", "OUTREACH_"))},
            **outreach_env(folder, f"sqlite:///{folder / 'run.db'}", "http://unused", "http://unused", False),
            "PYTHONPATH": str(REPO),
        }
        log(f"decisions: {'payment signals' if not k else f'{k} candidates per customer'}")
        extra = ("--candidates", str(drop)) if drop else ()
        results[str(k)] = run_child("decide", env, folder / "result.json", *extra)
        shutil.rmtree(folder, ignore_errors=True)
    return results


def run_child(kind: str, env: dict, out: Path, *extra: str, timeout: float = 3600) -> dict:
    subprocess.run(
        [sys.executable, __file__, "--child", kind, "--out", str(out), *extra],
        env=env,
        cwd=REPO,
        check=True,
        timeout=timeout,
    )
    return json.loads(out.read_text())


# -- analysis -----------------------------------------------------------------------------------


def stage(spans: list, prefix: str) -> tuple[float, int]:
    hits = [(b, e) for name, b, e in spans if name.startswith(prefix)]
    if not hits:
        return 0.0, 0
    return max(e for _, e in hits) - min(b for b, _ in hits), len(hits)


def stages(spans: list, shards: list | None = None) -> dict[str, float]:
    """Wall time of each stage. With shard runs, a channel's dispatch is its slowest shard's (the
    shards run side by side; the time until a worker picks a shard run up is Prefect's)."""
    rows = {
        "candidates (payment signals)": stage(spans, "load-candidates")[0],
        "decisions + ledger plan": stage(spans, "decide")[0],
        "reconcile (4 channels)": stage(spans, "reconcile")[0],
        "dispatch sms": stage(spans, "dispatch-sms")[0],
        "dispatch email": stage(spans, "dispatch-email")[0],
        "dispatch letter (PDF)": stage(spans, "dispatch-letter")[0],
        "dispatch call list": stage(spans, "dispatch-call")[0],
        "call tasks (agents' list)": stage(spans, "call-tasks")[0],
        "print batches (letters sorted, manifests)": stage(spans, "print-batches")[0],
        "dispatch, all channels (first batch → last)": stage(spans, "dispatch-")[0],
        "funnel + artifact": stage(spans, "funnel")[0],
        "final check": stage(spans, "unfinished")[0],
    }
    if shards:
        for channel in ("sms", "email"):
            rows[f"dispatch {channel}"] = max(sh["dispatch"][channel] for sh in shards)
        here = [(n, b, e) for n, b, e in spans if n.startswith(("dispatch-letter", "dispatch-call"))]
        rows["dispatch, all channels (first batch → last)"] = max(
            [stage(here, "dispatch-")[0]] + [sh["dispatch"]["all"] for sh in shards]
        )
    rows["critical path (sum of sequential stages)"] = sum(
        rows[k]
        for k in (
            "candidates (payment signals)",
            "decisions + ledger plan",
            "reconcile (4 channels)",
            "dispatch, all channels (first batch → last)",
            "call tasks (agents' list)",
            "print batches (letters sorted, manifests)",
            "funnel + artifact",
            "final check",
        )
    )
    return rows


def counts(spans: list) -> dict[str, int]:
    return {c: stage(spans, f"dispatch-{c}")[1] for c in ("sms", "email", "letter", "call")}


def ledger_counts(url: str) -> dict[str, int]:
    from sqlalchemy import func, select

    from outreach.db import make_engine, session_scope
    from outreach.models import Message

    engine = make_engine(url)
    with session_scope(engine) as session:
        rows = session.execute(
            select(Message.channel, Message.status, func.count())
            .where(Message.run_date == DAY)
            .group_by(Message.channel, Message.status)
        ).all()
    engine.dispose()
    return {f"{c}:{s}": n for c, s, n in rows}


# -- setups -------------------------------------------------------------------------------------


def embedded(workdir: Path, sqlite_file: Path, twilio: str, sendgrid: str) -> dict:
    results = {}
    for kind in ("plain", "embedded"):
        folder = workdir / f"embedded-{kind}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        shutil.copy(sqlite_file, folder / "run.db")
        url = f"sqlite:///{folder / 'run.db'}"
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "OUTREACH_"))},
            **outreach_env(folder, url, twilio, sendgrid, rate_limits=False),
            "PYTHONPATH": str(REPO),
            "PREFECT_HOME": str(workdir / "prefect-home-embedded"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }
        if kind == "embedded":  # a fresh but warm ephemeral database, as on any run after the first
            shutil.rmtree(workdir / "prefect-home-embedded", ignore_errors=True)
            subprocess.run(
                [sys.executable, "-c", "from prefect import flow\n@flow\ndef warm(): pass\nwarm()"],
                env=env,
                check=True,
                capture_output=True,
            )
        log(f"embedded setup: {kind} run")
        results[kind] = run_child(kind, env, folder / "result.json")
        results[kind]["ledger"] = ledger_counts(url)
    return results


def cluster(workdir: Path, template: str, twilio: str, sendgrid: str, shards: int) -> dict:
    from tests.cluster import Cluster

    results = {}
    plain_db = pg_copy(template, "outreach_scale_plain")
    run_db = pg_copy(template, "outreach_scale_run")
    try:
        folder = workdir / "cluster-plain"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "OUTREACH_"))},
            **outreach_env(folder, plain_db, twilio, sendgrid, rate_limits=False),
            "PYTHONPATH": str(REPO),
        }
        log("cluster setup: plain run on PostgreSQL")
        results["plain"] = run_child("plain", env, folder / "result.json")
        results["plain"]["ledger"] = ledger_counts(plain_db)

        folder = workdir / "cluster-run"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        env = outreach_env(folder, run_db, twilio, sendgrid, rate_limits=True)
        running = Cluster(
            folder, PG_ADMIN, env, limits={"sms": HIGH_LIMIT, "email": HIGH_LIMIT}, tag="scale_bench"
        )
        try:
            log("cluster setup: Prefect server on PostgreSQL, deploy, 2 workers")
            running.start_server()
            running.setup(workers={"bench-w1": 2, "bench-w2": 2})
            log(f"cluster setup: daily deployment, {shards} shards")
            started = time.time()
            run = running.run_deployment("daily-outreach", "daily", run_date=DAY.isoformat(), shards=shards)
            state = running.wait_run(run, 3600)
            info = running.flow_run(run)
            total = datetime.fromisoformat(info["end_time"]).timestamp() - started
            below = running.children(run)  # the dispatch-due subflow and the shard runs it started
            shard_runs = [r for r in below if r["name"].startswith("dispatch-shard")]
            all_runs = [run] + [r["id"] for r in below]
            tasks = running.task_runs(all_runs)

            def ts(value):
                return datetime.fromisoformat(value).timestamp()

            spans = [(t["name"], ts(t["start_time"]), ts(t["end_time"])) for t in tasks if t.get("end_time")]
            shard_info = []
            for shard in shard_runs:
                mine = [(t["name"], ts(t["start_time"]), ts(t["end_time"])) for t in tasks
                        if t["flow_run_id"] == shard["id"] and t.get("end_time")]  # fmt: skip
                shard_info.append(
                    {
                        "name": shard["name"],
                        "state": shard["state_type"],
                        "pickup": ts(shard["start_time"]) - ts(shard["created"]),
                        "run": ts(shard["end_time"]) - ts(shard["start_time"]),
                        "dispatch": {
                            c: round(stage(mine, "dispatch-" + ("" if c == "all" else c))[0], 2)
                            for c in ("sms", "email", "all")
                        },
                    }
                )
            results["cluster"] = {
                "state": state,
                "total": total,
                "pickup": ts(info["start_time"]) - started,
                "spans": spans,
                "task_runs": len(tasks),
                "shards": shard_info,
                "claimed_by": claimed_by(run_db),
            }
            log("cluster setup: limiter cost")
            limiter_env = running.prefect_env(**env)
            results["limiter"] = run_child("limiter", limiter_env, folder / "limiter.json", "--count", "300")
        finally:
            running.close()
        results["cluster"]["ledger"] = ledger_counts(run_db)
    finally:
        pg_drop("outreach_scale_plain")
        pg_drop("outreach_scale_run")
    return results


def claimed_by(url: str) -> dict[str, int]:
    from sqlalchemy import select

    from outreach.db import make_engine, session_scope
    from outreach.models import Message

    engine = make_engine(url)
    with session_scope(engine) as session:
        rows = session.execute(
            select(Message.claimed_by, Message.channel).where(
                Message.run_date == DAY, Message.status == "sent"
            )
        ).all()
    engine.dispose()
    found: dict[str, int] = {}
    for who, channel in rows:
        key = f"{(who or '?').split('/', 1)[0]} {channel}"
        found[key] = found.get(key, 0) + 1
    return found


def fidelity(workdir: Path, rate: float = 150.0, burst: int = 50, processes: int = 3) -> dict:
    """How much of a rate limit the shared limiter delivers under contention: ``processes``
    processes × 4 threads taking slices of 50 slots from one limit for 30 s (no sending)."""
    from tests.cluster import Cluster

    folder = workdir / "fidelity"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    running = Cluster(folder, PG_ADMIN, {}, tag="scale_fidelity")
    try:
        running.start_server()
        running.create_limit("fidelity-sms", burst, rate)
        env = running.prefect_env()
        procs = [
            subprocess.Popen(
                [sys.executable, __file__, "--child", "contend", "--out", str(folder / f"c{n}.json")],
                env=env,
                cwd=REPO,
            )
            for n in range(processes)
        ]
        for proc in procs:
            proc.wait(300)
        grants = sorted(
            t for n in range(processes) for t in json.loads((folder / f"c{n}.json").read_text())["grants"]
        )
    finally:
        running.close()
    span = grants[-1] - grants[0]
    return {
        "configured": rate,
        "burst": burst,
        "processes": processes,
        "threads": processes * 4,
        "slots": 50 * len(grants),
        "seconds": span,
        "achieved": 50 * (len(grants) - burst / 50) / span if span else 0.0,
    }


# -- report -------------------------------------------------------------------------------------


def report(results: dict, args) -> None:
    print()
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
          f"load average now {os.getloadavg()[0]:.1f}; python {platform.python_version()}")  # fmt: skip
    print(f"date: {datetime.now(UTC).isoformat(timespec='minutes')}; customers {args.customers:,}; day {DAY}")
    if "fidelity" in results:
        print(f"limiter under contention: {results['fidelity']}")
    for k, row in (results.get("decisions") or {}).items():
        print(f"decisions, {'payment signals' if k == '0' else k + ' per customer'}: {row}")
    columns = []
    if not ({"embedded", "cluster"} & set(results)):
        return
    if "embedded" in results:
        columns += [
            ("plain SQLite", results["embedded"]["plain"]),
            ("Prefect embedded", results["embedded"]["embedded"]),
        ]
    if "cluster" in results:
        columns += [
            ("plain PostgreSQL", results["cluster"]["plain"]),
            (f"PG + 2 workers, {args.shards} shards", results["cluster"]["cluster"]),
        ]
    rows = {name: stages(data["spans"], data.get("shards")) for name, data in columns}
    print()
    print("| stage (wall s) | " + " | ".join(name for name, _ in columns) + " |")
    print("|---|" + "---:|" * len(columns))
    for key in next(iter(rows.values())):
        print(f"| {key} | " + " | ".join(f"{rows[name][key]:.1f}" for name, _ in columns) + " |")
    print("| **total wall** | " + " | ".join(f"**{data['total']:.1f}**" for _, data in columns) + " |")
    overhead = [
        data["total"] - rows[name]["critical path (sum of sequential stages)"] for name, data in columns
    ]
    shares = [
        f"{o:.1f} ({100 * o / data['total']:.0f}%)" for o, (_, data) in zip(overhead, columns, strict=True)
    ]
    print("| Prefect overhead (total − critical path) | " + " | ".join(shares) + " |")
    print()
    for name, data in columns:
        if data.get("max_rss_mb"):
            print(f"{name}: peak RSS {data['max_rss_mb']:.0f} MB")
        print(f"{name}: ledger {data.get('ledger')}; batches {counts(data['spans'])}; "
              f"task runs {data.get('task_runs', '-')}")  # fmt: skip
    if "embedded" in results:
        emb = results["embedded"]["embedded"]
        print(f"embedded: import flows {emb['import']:.1f} s, call → flow running {emb['flow_start']:.1f} s")
    if "cluster" in results:
        clu = results["cluster"]["cluster"]
        print(f"cluster: state {clu['state']}; trigger → daily running {clu['pickup']:.1f} s")
        for shard in clu["shards"]:
            print(f"  {shard['name']}: {shard['state']}, created → running {shard['pickup']:.1f} s, "
                  f"ran {shard['run']:.1f} s, dispatch {shard['dispatch']}")  # fmt: skip
        print(f"  sent by worker and channel: {clu['claimed_by']}")
        print(f"limiter (per acquisition of 500 slots, limit never binding): {results['cluster']['limiter']}")
    for name, data in columns:
        for channel in ("sms", "email", "letter"):
            span = stages(data["spans"], data.get("shards"))[
                {"sms": "dispatch sms", "email": "dispatch email", "letter": "dispatch letter (PDF)"}[channel]
            ]
            sent = sum(
                n
                for k, n in (data.get("ledger") or {}).items()
                if k.startswith(f"{channel}:") and k.endswith(("sent", "delivered"))
            )
            if span:
                print(f"{name}: {channel} {sent:,} in {span:.1f} s = {sent / span:,.0f}/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "outreach-scale")
    parser.add_argument("--setups", default="embedded,cluster")
    parser.add_argument("--shards", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL template database")
    parser.add_argument("--prepare-only", action="store_true")
    parser.add_argument("--child", choices=["plain", "embedded", "limiter", "contend", "decide"])
    parser.add_argument("--candidates", default=None)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--count", type=int, default=300)
    args = parser.parse_args()
    if args.child:
        if args.child == "contend":
            data = child_contend(args.seconds, 4, 50)
        elif args.child == "decide":
            data = child_decide(args.candidates)
        else:
            result = {"plain": child_plain, "embedded": child_embedded}.get(args.child)
            data = result() if result else child_limiter(args.count)
        data["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        args.out.write_text(json.dumps(data, default=str))
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    sqlite_file, template = prepare(args.workdir, args.customers)
    if args.prepare_only:
        return
    from bench.bench_providers import start_servers

    servers, twilio, sendgrid = start_servers()
    results: dict = {}
    try:
        setups = args.setups.split(",")
        if "embedded" in setups:
            results["embedded"] = embedded(args.workdir, sqlite_file, twilio, sendgrid)
        if "cluster" in setups:
            results["cluster"] = cluster(args.workdir, template, twilio, sendgrid, args.shards)
        if "fidelity" in setups:
            results["fidelity"] = fidelity(args.workdir)
        if "decisions" in setups:
            results["decisions"] = decisions(args.workdir, sqlite_file)
    finally:
        servers.terminate()
        servers.wait(10)
        if not args.keep:
            pg_drop(template)
    (args.workdir / "results.json").write_text(json.dumps(results, default=str, indent=1))
    report(results, args)


if __name__ == "__main__":
    main()
