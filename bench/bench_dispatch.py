"""Dispatch throughput through the whole path vs the bare SDK vs a naive one-task-per-message flow.

    python bench/bench_dispatch.py [--sms 3000] [--email 20000] [--naive 300] [--workers 2]
                                   [--db sqlite|postgresql]

Whole path = claim a batch in the ledger, recheck consent, render the templates, store the
rendered content, send through the adapter (real SDK) to the local provider server, record every
outcome in the ledger. Against, in the same run and on the same server: (a) the bare SDK call in a
loop on one thread (the ceiling of one SDK client here; for SMS twice: on the SDK's default HTTP
client and on the urllib3 transport the adapter uses, channels/twilio_transport.py; the higher
one is the ceiling), and (b) a naive Prefect flow with one task per message doing the same whole
path for one message. The provider servers run as ``outreach fake-providers`` in their own process.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.chdir(REPO)  # offers.yaml and templates/ are read relative to the repository
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
from sqlalchemy import insert  # noqa: E402

import flows  # noqa: E402,F401 - the project's Prefect settings (prefect.toml) before Prefect loads
from bench.bench_providers import KEY, SENDER, SID, TOKEN, start_servers  # noqa: E402
from channels.sendgrid_email import SendGridEmail  # noqa: E402
from channels.twilio_sms import TwilioSMS  # noqa: E402
from outreach.config import Settings, load_offers  # noqa: E402
from outreach.db import make_engine, session_scope, upgrade  # noqa: E402
from outreach.dispatch import Dispatcher  # noqa: E402
from outreach.models import Candidate, Customer  # noqa: E402
from outreach.planning import decide_day  # noqa: E402
from outreach.sending import send_due  # noqa: E402

DAY = date(2026, 11, 18)
NOON = datetime(2026, 11, 18, 11, 0, tzinfo=UTC)
OFFERS = load_offers(REPO / "offers.yaml")


def populate(engine, groups: dict[str, tuple[str, int]]) -> None:
    """Customers and candidates: per group a prefix, an offer and a count."""
    customers, candidates = [], []
    for prefix, (offer, count) in groups.items():
        for i in range(count):
            cid = f"{prefix}{i}"
            customers.append(
                {
                    "customer_id": cid,
                    "first_name": "Anne",
                    "last_name": "de Vries",
                    "language": "nl",
                    "mobile": f"+316{len(customers):08d}",
                    "mobile_valid": True,
                    "email": f"{cid.lower()}@example.nl",
                    "email_valid": True,
                    "street": "Dorpsstraat",
                    "house_number": "12",
                    "postal_code": "1234 AB",
                    "city": "Utrecht",
                    "country": "NL",
                    "address_valid": True,
                    "timezone": "Europe/Amsterdam",
                }
            )
            candidates.append(
                {
                    "candidate_date": DAY,
                    "customer_id": cid,
                    "offer_code": offer,
                    "trigger": "bench",
                    "trigger_ref": cid,
                    "score": 0.5,
                    "source": "bench",
                }
            )
    with session_scope(engine) as session:
        for table, rows in ((Customer, customers), (Candidate, candidates)):
            for start in range(0, len(rows), 5000):
                session.execute(insert(table), rows[start : start + 5000])
    decide_day(engine, DAY, OFFERS, now=NOON)


def sms_channel(url: str) -> TwilioSMS:
    return TwilioSMS(
        SID,
        TOKEN,
        from_=SENDER,
        api_url=url,
        status_callback="https://bank.example/s",
        validity_period=3600,
        timeout=10,
        concurrency=2,
    )


def email_channel(url: str) -> SendGridEmail:
    return SendGridEmail(
        KEY,
        "aanbod@bank.example",
        api_url=url,
        asm_group_id=42,
        categories=["offers"],
        timeout=30,
        concurrency=2,
    )


def whole_path(engine, settings, channel, batch_size: int, workers: int = 1) -> tuple[int, float]:
    # dispatch at the planned noon: the send-time quiet-hours check must not depend on when this runs
    dispatcher = Dispatcher(engine, settings, OFFERS, channel, "bench", clock=lambda: NOON)
    start = time.perf_counter()
    report, _ = send_due(dispatcher, DAY, batch_size=batch_size, at=NOON, workers=workers)
    elapsed = time.perf_counter() - start
    channel.close()
    assert report.failed == report.unknown == report.deferred == 0, vars(report)
    return report.sent, elapsed


def _shard_worker(
    db_url: str, outbox: str, kind: str, url: str, batch_size: int, shard: int, shards: int, queue
):
    """One shard of the day in its own process, as one ``dispatch-shard`` flow run sends it."""
    engine = make_engine(db_url)
    channel = sms_channel(url) if kind == "sms" else email_channel(url)
    settings = Settings(database_url=db_url, outbox_dir=Path(outbox))
    dispatcher = Dispatcher(engine, settings, OFFERS, channel, f"bench-{shard}", clock=lambda: NOON)
    report, _ = send_due(
        dispatcher, DAY, batch_size=batch_size, at=NOON, workers=2, shard=shard, shards=shards
    )
    channel.close()
    queue.put((report.sent, report.failed + report.unknown + report.deferred))


def shard_processes(db_url: str, settings, kind: str, url: str, batch_size: int, processes: int):
    """The whole path in ``processes`` processes, one shard each; timed from start to the last one done."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    for engine in _engines.values():
        engine.dispose()  # no pooled connection crosses the fork
    queue = context.Queue()
    args = (db_url, str(settings.outbox_dir), kind, url, batch_size)
    workers = [
        context.Process(target=_shard_worker, args=(*args, shard, processes, queue))
        for shard in range(processes)
    ]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    results = [queue.get(timeout=600) for _ in workers]
    elapsed = time.perf_counter() - start
    for worker in workers:
        worker.join()
    assert all(bad == 0 for _, bad in results), results
    return sum(sent for sent, _ in results), elapsed


def bare_sms(url: str, n: int, transport: str = "default") -> float:
    from twilio.http.http_client import TwilioHttpClient
    from twilio.rest import Client

    from channels.twilio_transport import Urllib3HttpClient

    if transport == "default":
        http = TwilioHttpClient(timeout=10)
    else:
        http = Urllib3HttpClient(api_url=url, timeout=10)
    client = Client(SID, TOKEN, http_client=http)
    client.api.base_url = url
    body = "Beste Anne, reist u binnenkort? Bekijk onze reisverzekering. Stop? Sms STOP"
    start = time.perf_counter()
    for i in range(n):
        client.messages.create(
            to=f"+317{i:08d}",
            from_=SENDER,
            body=body,
            status_callback="https://bank.example/s",
            validity_period=3600,
        )
    return time.perf_counter() - start


def bare_email(url: str, n: int) -> float:
    from sendgrid import SendGridAPIClient

    sg = SendGridAPIClient(api_key=KEY, host=url)
    start = time.perf_counter()
    for first in range(0, n, 1000):
        payload = {
            "from": {"email": "aanbod@bank.example"},
            "subject": "Kinderspaarrekening",
            "content": [{"type": "text/plain", "value": "%t%"}, {"type": "text/html", "value": "%h%"}],
            "personalizations": [
                {
                    "to": [{"email": f"bare{i}@example.nl"}],
                    "subject": f"Kinderspaarrekening {i}",
                    "substitutions": {
                        "%t%": f"Beste klant {i}, spaar voor later.",
                        "%h%": f"<p>Beste klant {i}</p>",
                    },
                    "custom_args": {"outreach_id": str(i)},
                }
                for i in range(first, min(first + 1000, n))
            ],
        }
        sg.client.mail.send.post(request_body=payload, timeout=30)
    return time.perf_counter() - start


def naive_prefect(db_url: str, settings: Settings, url: str, kind: str) -> tuple[int, float]:
    """One Prefect task per message, each doing the whole path for its message."""
    from prefect import flow, task
    from sqlalchemy import select

    from outreach.models import Message

    channel = sms_channel(url) if kind == "sms" else email_channel(url)  # shared: fair to the naive flow
    dispatcher = Dispatcher(
        make_engine_cached(db_url), settings, OFFERS, channel, "naive", clock=lambda: NOON
    )

    @task(persist_result=False)
    def send_one(message_id: int) -> int:
        return dispatcher.send_ids([message_id]).sent

    @flow(persist_result=False)
    def naive(ids: list[int]) -> int:
        return sum(f.result() for f in [send_one.submit(i) for i in ids])

    engine = make_engine_cached(db_url)
    with session_scope(engine) as session:
        ids = list(
            session.scalars(
                select(Message.id).where(
                    Message.channel == kind, Message.status == "planned", Message.customer_id.like("N%")
                )
            )
        )
    naive([])  # start Prefect's server outside the timing
    start = time.perf_counter()
    sent = naive(ids)
    elapsed = time.perf_counter() - start
    channel.close()
    return sent, elapsed


_engines: dict[str, object] = {}


def make_engine_cached(url: str):
    if url not in _engines:
        _engines[url] = make_engine(url)
    return _engines[url]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sms", type=int, default=3000)
    parser.add_argument("--email", type=int, default=20000)
    parser.add_argument("--naive", type=int, default=300, help="messages for the one-task-per-message flow")
    parser.add_argument("--workers", type=int, default=2, help="batches sent at once by send_due")
    parser.add_argument(
        "--processes", type=int, default=2, help="shard processes for the sharded whole path (0: skip)"
    )
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    process, twilio_url, sendgrid_url = start_servers()
    rows: list[tuple[str, str, int, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["PREFECT_HOME"] = str(Path(tmp) / "prefect")
        if args.db == "sqlite":
            db_url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        else:
            db_url = os.environ.get(
                "OUTREACH_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/bench"
            )
        upgrade(db_url)
        engine = make_engine_cached(db_url)
        settings = Settings(database_url=db_url, outbox_dir=Path(tmp) / "outbox")
        try:
            for kind, count, offer in (
                ("sms", args.sms, "TRAVEL_INSURANCE"),
                ("email", args.email, "KIDS_SAVINGS"),
            ):
                groups = {f"{kind[0].upper()}": (offer, count), f"N{kind}": (offer, args.naive)}
                if args.processes:
                    groups[f"P{kind}"] = (offer, count)  # for the sharded run, parked until then
                populate(engine, groups)
            # naive customers are planned too; the whole path must not send them: park them first
            from sqlalchemy import update

            from outreach.models import Message

            with session_scope(engine) as session:
                session.execute(
                    update(Message)
                    .where(Message.customer_id.like("N%") | Message.customer_id.like("P%"))
                    .values(status="parked")
                )
            rows.append(
                (
                    "SMS",
                    "bare SDK loop, 1 thread, SDK's default HTTP client",
                    args.sms,
                    bare_sms(twilio_url, args.sms),
                )
            )
            rows.append(
                (
                    "SMS",
                    "bare SDK loop, 1 thread, urllib3 transport",
                    args.sms,
                    bare_sms(twilio_url, args.sms, "urllib3"),
                )
            )
            rows.append(
                (
                    "SMS",
                    f"whole path: send_due, batches of 500, {args.workers} batch workers, 2 SDK threads",
                    *whole_path(engine, settings, sms_channel(twilio_url), 500, args.workers),
                )
            )
            rows.append(
                (
                    "email",
                    "bare SDK, 1,000 personalizations/request (ceiling)",
                    args.email,
                    bare_email(sendgrid_url, args.email),
                )
            )
            rows.append(
                (
                    "email",
                    f"whole path: send_due, batches of 1,000, {args.workers} batch workers",
                    *whole_path(engine, settings, email_channel(sendgrid_url), 1000, args.workers),
                )
            )
            if args.processes:
                with session_scope(engine) as session:
                    session.execute(
                        update(Message)
                        .where(Message.status == "parked", Message.customer_id.like("P%"))
                        .values(status="planned")
                    )
                for kind, url, size in (("sms", twilio_url, 500), ("email", sendgrid_url, 1000)):
                    rows.append(
                        (
                            "SMS" if kind == "sms" else "email",
                            f"whole path: {args.processes} shard processes x {args.workers} batch workers",
                            *shard_processes(db_url, settings, kind, url, size, args.processes),
                        )
                    )
            with session_scope(engine) as session:
                session.execute(update(Message).where(Message.status == "parked").values(status="planned"))
            for kind, url in (("sms", twilio_url), ("email", sendgrid_url)):
                sent, seconds = naive_prefect(db_url, settings, url, kind)
                rows.append(
                    (
                        "SMS" if kind == "sms" else "email",
                        "naive Prefect flow, 1 task per message",
                        sent,
                        seconds,
                    )
                )
        finally:
            process.terminate()
            process.wait(timeout=10)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"db {args.db}, {time.strftime('%Y-%m-%d')}"
    )
    print("| channel | what | messages | seconds | rate |\n|---|---|---:|---:|---:|")
    for channel, label, count, seconds in rows:
        per_minute = f" ({count / seconds * 60:,.0f}/min)" if channel == "email" else ""
        print(f"| {channel} | {label} | {count:,} | {seconds:.2f} | {count / seconds:,.0f}/s{per_minute} |")
    for channel in ("SMS", "email"):
        rate = {label: count / seconds for ch, label, count, seconds in rows if ch == channel}
        ceiling = max(r for label, r in rate.items() if label.startswith("bare"))
        naive_rate = next(r for label, r in rate.items() if label.startswith("naive"))
        for label, whole in rate.items():
            if label.startswith("whole path"):
                print(
                    f"{channel} {label}: {whole / ceiling:.0%} of the ceiling, "
                    f"{whole / naive_rate:.1f}x the naive flow"
                )


if __name__ == "__main__":
    main()
