"""The live lane's figures (docs/realtime.md), on the real broker and the local Twilio API.

    python bench/bench_realtime.py [--trigger-rate 200] [--latency-seconds 30]
                                   [--intake-events 300000] [--trigger-share 0.02] [--db sqlite|postgresql]

1. Latency: airport withdrawals (each a different customer) published at --trigger-rate per second
   for --latency-seconds; per message, event (stamped at publish) → hand-off to the SMS provider
   (the ledger's sent_at, stamped when the provider accepted it; real Twilio SDK against
   ``outreach fake-providers``). p50, p95, p99, max.
2. Objection: while the lane runs, a customer opts out (the same consent.record `outreach optout`
   uses) and an airport withdrawal of theirs is published --objection-gaps ms later; counted: how
   many of those next live messages were stopped.
3. Intake: --intake-events payment events (--trigger-share of them airport withdrawals, the rest
   supermarket payments) are published first, then a fresh consumer drains them; the consumer's
   progress (events acknowledged) and memory (RSS) are sampled every second. Sustained rate =
   events / seconds between the first and the last acknowledgement.

The consumer is the product's own `outreach live` in its own process. SMS quiet hours are off in
the bench's copy of offers.yaml, so the figures do not depend on the hour the bench runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.chdir(REPO)

import yaml  # noqa: E402
from nats.js.errors import NotFoundError  # noqa: E402
from sqlalchemy import create_engine, func, insert, select, text  # noqa: E402

from bench.bench_providers import SENDER, SID, TOKEN, start_servers  # noqa: E402
from outreach import consent  # noqa: E402
from outreach.db import make_engine, session_scope, upgrade  # noqa: E402
from outreach.live.events import PaymentEvent  # noqa: E402
from outreach.live.jetstream import DEFAULT_URL, JetStreamSink, StreamNames  # noqa: E402
from outreach.live.tables import LiveEvent  # noqa: E402
from outreach.models import Customer, Message  # noqa: E402

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def customers(n: int) -> list[dict]:
    return [
        {
            "customer_id": f"B{i:07d}",
            "first_name": "Anne",
            "last_name": "de Vries",
            "language": "nl",
            "mobile": f"+316{i:08d}",
            "mobile_valid": True,
            "email": f"b{i}@example.nl",
            "email_valid": True,
            "address_valid": False,
            "country": "NL",
            "timezone": "Europe/Amsterdam",
        }
        for i in range(n)
    ]


def database(kind: str, folder: Path) -> tuple[str, callable]:
    if kind == "sqlite":
        url = f"sqlite:///{folder / 'bench.db'}"
        upgrade(url)
        return url, lambda: None
    name = f"outreach_bench_rt_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    upgrade(url)

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    return url, drop


def bench_offers(folder: Path) -> Path:
    """The shipped offers and triggers, with SMS quiet hours off (the bench runs at any hour)."""
    offers = yaml.safe_load((REPO / "offers.yaml").read_text())
    offers["policy"]["quiet_hours"] = {}
    path = folder / "offers.yaml"
    path.write_text(yaml.safe_dump(offers))
    (folder / "triggers.yaml").write_text((REPO / "triggers.yaml").read_text())
    return path


def airport(customer_id: str, event_id: str) -> bytes:
    return PaymentEvent(
        event_id=event_id,
        customer_id=customer_id,
        occurred_at=datetime.now(UTC),
        amount="-120.00",
        mcc="6011",
        description="Geldautomaat",
        city="Schiphol",
    ).as_json()


def shopping(customer_id: str, event_id: str) -> bytes:
    return PaymentEvent(
        event_id=event_id, customer_id=customer_id, occurred_at=datetime.now(UTC), amount="-23.10", mcc="5411"
    ).as_json()


def start_consumer(
    env: dict, names: StreamNames, batch_events: int = 500, batch_ms: int = 200
) -> subprocess.Popen:
    log = open(Path(env["OUTREACH_OUTBOX_DIR"]).parent / f"{names.durable}.log", "w")  # noqa: SIM115
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from outreach.cli import main; main()",
            "live",
            "--stream",
            names.stream,
            "--subject",
            names.subject,
            "--durable",
            names.durable,
            "--batch-ms",
            str(batch_ms),
            "--batch-events",
            str(batch_events),
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    return process


def stop_consumer(process: subprocess.Popen) -> str:
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=60)
    return out.strip().splitlines()[-1] if out.strip() else ""


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def publish_at(sink: JetStreamSink, make, count: int, rate: float) -> float:
    """Publish ``count`` events from ``make(i)`` at ``rate`` per second; returns the seconds taken."""
    started = time.monotonic()
    tick = 0.02
    per_tick = min(1000, max(1, round(rate * tick)))  # bounded: the broker answers each publish
    sent = 0
    while sent < count:
        batch = [make(sent + k) for k in range(min(per_tick, count - sent))]
        await sink.publish(batch)
        sent += len(batch)
        ahead = sent / rate - (time.monotonic() - started)
        if ahead > 0:
            await asyncio.sleep(ahead)
    return time.monotonic() - started


async def consumer_progress(names: StreamNames) -> tuple[int, int]:
    """(events acknowledged by the group, events still pending or unacknowledged)."""
    sink = await JetStreamSink.open(DEFAULT_URL, names)
    try:
        info = await sink.js.consumer_info(names.stream, names.durable)
        return int(info.ack_floor.stream_seq), int(info.num_pending) + int(info.num_ack_pending)
    except NotFoundError:  # the consumer process has not joined yet
        return 0, -1
    finally:
        await sink.close()


async def drop_streams(tag: str) -> None:
    """The bench's streams go with it (the broker is shared)."""
    sink = await JetStreamSink.open(DEFAULT_URL, StreamNames(f"BENCH_RT_{tag}", f"bench.{tag}.rt"))
    try:
        for name in (f"BENCH_RT_{tag}", f"BENCH_IN_{tag}"):
            with contextlib.suppress(NotFoundError):
                await sink.js.delete_stream(name)
    finally:
        await sink.close()


def wait_until(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trigger-rate", type=float, default=200.0)
    parser.add_argument("--latency-seconds", type=float, default=30.0)
    parser.add_argument("--intake-events", type=int, default=300_000)
    parser.add_argument("--trigger-share", type=float, default=0.02)
    # a backlog fills every batch: bigger batches share the policy engine's fixed cost per batch
    parser.add_argument("--intake-batch-events", type=int, default=5000)
    parser.add_argument("--objection-gaps", default="0,100,250,500,1000")
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()

    triggers_needed = int(args.trigger_rate * args.latency_seconds)
    gaps = [int(g) for g in args.objection_gaps.split(",")]
    intake_triggers = int(args.intake_events * args.trigger_share)
    n_customers = triggers_needed + len(gaps) * 3 + intake_triggers + 1000
    folder = Path(tempfile.mkdtemp(prefix="bench-realtime-"))
    url, drop = database(args.db, folder)
    engine = make_engine(url)
    rows = customers(n_customers)
    with session_scope(engine) as session:
        for start in range(0, len(rows), 5000):
            session.execute(insert(Customer), rows[start : start + 5000])
    providers, twilio_url, _ = start_servers()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "OUTREACH_DATABASE_URL": url,
        "OUTREACH_OFFERS_FILE": str(bench_offers(folder)),
        "OUTREACH_TEMPLATES_DIR": str(REPO / "templates"),
        "OUTREACH_OUTBOX_DIR": str(folder / "outbox"),
        "OUTREACH_SMS_BACKEND": "twilio",
        "TWILIO_ACCOUNT_SID": SID,
        "TWILIO_AUTH_TOKEN": TOKEN,
        "OUTREACH_TWILIO_FROM": SENDER,
        "OUTREACH_TWILIO_API_URL": twilio_url,
        "OUTREACH_SEND_WINDOW_CHECK": "false",
        "OUTREACH_UNSUBSCRIBE_SECRET": uuid.uuid4().hex,
    }
    tag = uuid.uuid4().hex[:8]
    results: list[str] = []
    consumer: subprocess.Popen | None = None
    try:
        # -- 1. latency at the trigger rate ----------------------------------------------------
        names = StreamNames(f"BENCH_RT_{tag}", f"bench.{tag}.rt", f"bench-{tag}")
        consumer = start_consumer(env, names)

        def sent_count() -> int:
            with engine.connect() as conn:
                return conn.scalar(select(func.count()).select_from(Message).where(Message.status == "sent"))

        async def warm_up() -> None:  # imports, connections, first render: not an event's latency
            sink = await JetStreamSink.open(DEFAULT_URL, names)
            try:
                await sink.publish([airport(f"B{n_customers - 1:07d}", f"W{tag}")])
            finally:
                await sink.close()

        asyncio.run(warm_up())
        wait_until(lambda: sent_count() >= 1, 120)

        async def latency_load() -> float:
            sink = await JetStreamSink.open(DEFAULT_URL, names)
            try:
                return await publish_at(
                    sink, lambda i: airport(f"B{i:07d}", f"L{tag}-{i}"), triggers_needed, args.trigger_rate
                )
            finally:
                await sink.close()

        took = asyncio.run(latency_load())
        wait_until(lambda: sent_count() >= triggers_needed + 1, 120)
        # -- 2. objection while the lane runs ------------------------------------------------
        objections = []
        base = triggers_needed

        async def objection_trials() -> None:
            sink = await JetStreamSink.open(DEFAULT_URL, names)
            try:
                for k, gap in enumerate(gaps * 3):
                    cid = f"B{base + k:07d}"
                    with session_scope(engine) as session:
                        consent.record(session, cid, "all", "opt_out", "bench")
                    await asyncio.sleep(gap / 1000)
                    await sink.publish([airport(cid, f"O{tag}-{k}")])
                    objections.append((gap, cid))
                    await asyncio.sleep(0.3)
            finally:
                await sink.close()

        asyncio.run(objection_trials())
        time.sleep(3)
        latency_line = stop_consumer(consumer)
        print(latency_line, flush=True)
        with engine.connect() as conn:
            pairs = conn.execute(
                select(LiveEvent.occurred_at, Message.sent_at)
                .join(Message, Message.customer_id == LiveEvent.customer_id)
                .where(LiveEvent.event_id.like(f"L{tag}-%"), Message.status == "sent")
            ).all()
            objected = [cid for _, cid in objections]
            leaked = conn.scalar(
                select(func.count())
                .select_from(Message)
                .where(Message.customer_id.in_(objected), Message.status.in_(["sent", "sending", "planned"]))
            )
        lat = [(_utc(s) - _utc(o)).total_seconds() for o, s in pairs]
        results.append(
            f"| latency | {triggers_needed} airport withdrawals at {args.trigger_rate:.0f}/s "
            f"(published in {took:.1f} s) | {len(lat)} SMS handed off; event → hand-off p50 "
            f"{pct(lat, 50):.3f} s, p95 {pct(lat, 95):.3f} s, p99 {pct(lat, 99):.3f} s, "
            f"max {max(lat):.3f} s |"
        )
        results.append(
            f"| objection | opt-out, then {len(objections)} withdrawals {args.objection_gaps} ms later "
            f"(3 each) | {len(objections) - leaked} of {len(objections)} next live messages stopped |"
        )
        print(results[-2], results[-1], sep="\n", flush=True)
        # -- 3. sustained intake ---------------------------------------------------------------
        names = StreamNames(f"BENCH_IN_{tag}", f"bench.{tag}.in", f"bench-in-{tag}")
        first_trigger = base + len(objections) + 10
        rng = random.Random(7)

        def intake_event(i: int) -> bytes:
            if i % round(1 / args.trigger_share) == 0:
                return airport(f"B{first_trigger + i // round(1 / args.trigger_share):07d}", f"I{tag}-{i}")
            return shopping(f"B{rng.randrange(n_customers):07d}", f"I{tag}-{i}")

        async def preload() -> float:
            sink = await JetStreamSink.open(DEFAULT_URL, names)
            try:
                return await publish_at(sink, intake_event, args.intake_events, 1e9)
            finally:
                await sink.close()

        preload_s = asyncio.run(preload())
        consumer = start_consumer(env, names, batch_events=args.intake_batch_events)
        samples = []  # (t, acked, rss)
        started = time.monotonic()
        while time.monotonic() - started < 3600:
            acked, pending = asyncio.run(consumer_progress(names))
            samples.append((time.monotonic() - started, acked, rss_mb(consumer.pid)))
            if pending == 0 and acked >= args.intake_events:
                break
            time.sleep(1.0)
        intake_line = stop_consumer(consumer)
        moving = [s for s in samples if 0 < s[1] < args.intake_events] or samples
        first = next(s for s in samples if s[1] > 0)
        last = next(s for s in samples if s[1] >= args.intake_events)
        rate = (last[1] - first[1]) / max(1e-9, last[0] - first[0])
        rss = [s[2] for s in moving]
        results.append(
            f"| intake | {args.intake_events} events preloaded ({preload_s:.0f} s), "
            f"{args.trigger_share:.0%} airport withdrawals, --batch-events {args.intake_batch_events} "
            f"| drained at {rate:,.0f} events/s sustained "
            f"over {last[0] - first[0]:.0f} s; consumer RSS {min(rss):.0f}–{max(rss):.0f} MB "
            f"(median {statistics.median(rss):.0f}) |"
        )
        print(intake_line, flush=True)
    finally:
        if consumer is not None and consumer.poll() is None:
            consumer.kill()  # a bench that failed half-way leaves no consumer behind
        providers.terminate()
        asyncio.run(drop_streams(tag))
        engine.dispose()
        drop()
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(f"\nload average at the end (the machine is shared with other processes): {load}")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"db {args.db}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )
    print("| figure | load | result |\n|---|---|---|")
    print("\n".join(results))


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


if __name__ == "__main__":
    main()
