"""Benchmark: the accountability report for a 100k-customer month; export and erasure of one customer.

    python bench/bench_compliance.py [--customers 100000] [--url postgresql+psycopg://.../empty_db]

Writes a month (March 2026) of contacts straight into a fresh database: 1-3 contacts per customer
over the offers' channels, delivery events for each email (0.1% complaints), opt-outs after 3% of
contacts and before the month for 2%, suppressions for 1%. One customer (tests/subject_seed.py)
goes through the real pipeline with files in an outbox that also holds 20,000 other customers'
message files. Then times ``outreach compliance report`` (query, charts, HTML and PDF), ``subject
export`` and ``subject erase`` of that customer. Results: bench/results/compliance.md. A
PostgreSQL URL must name an empty database (the script migrates it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, select

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # tests.subject_seed: the seeded customer of the tests

from outreach.compliance import report as accountability  # noqa: E402
from outreach.compliance.figures import Period  # noqa: E402
from outreach.db import make_engine, session_scope, upgrade  # noqa: E402
from outreach.models import ConsentEvent, Customer, DeliveryEventRecord, Message, Suppression  # noqa: E402
from outreach.subjects import export as access  # noqa: E402
from outreach.subjects.erase import erase  # noqa: E402
from tests import subject_seed  # noqa: E402

MONTH = Period(date(2026, 3, 1), date(2026, 3, 31))
CHUNK = 10_000


def _insert(engine, table, rows: list[dict]) -> None:
    for i in range(0, len(rows), CHUNK):
        with session_scope(engine) as session:
            session.execute(insert(table), rows[i : i + CHUNK])


def month(engine, customers: int) -> dict[str, int]:
    rng = random.Random(7)
    offers = [(o.code, o.channels) for o in subject_seed.OFFERS.offers]
    people, messages, outs, suppressions = [], [], [], []
    for n in range(customers):
        cid = f"B{n:08d}"
        people.append(
            {
                "customer_id": cid,
                "first_name": "Anne",
                "last_name": "Jansen",
                "language": "nl",
                "mobile": f"+316{n:08d}",
                "mobile_valid": True,
                "email": f"b{n}@example.nl",
                "email_valid": True,
                "country": "NL",
                "address_valid": True,
                "timezone": "Europe/Amsterdam",
            }
        )
        days = sorted(rng.sample(range(1, 29), rng.randint(1, 3)))
        for k, day in enumerate(days):
            code, channels = rng.choice(offers)
            channel = rng.choice(channels)
            sent = datetime(2026, 3, day, rng.randint(9, 17), rng.randint(0, 59), tzinfo=UTC)
            messages.append(
                {
                    "idempotency_key": f"{sent.date()}:{cid}:{code}:{channel}:{k}",
                    "run_date": sent.date(),
                    "customer_id": cid,
                    "offer_code": code,
                    "channel": channel,
                    "status": "delivered",
                    "created_at": sent,
                    "updated_at": sent,
                    "sent_at": sent,
                }
            )
            if rng.random() < 0.03:
                stamp = sent + timedelta(days=rng.randint(1, 5))
                outs.append(_consent(cid, rng.choice(["all", "sms", "email"]), stamp, rng))
        if rng.random() < 0.02:
            outs.append(_consent(cid, "topic:credit", datetime(2026, 1, 15, tzinfo=UTC), rng))
        if rng.random() < 0.01:
            suppressions.append({"customer_id": cid, "reason": "arrears", "valid_from": date(2025, 1, 1)})
    _insert(engine, Customer, people)
    _insert(engine, Message, messages)
    _insert(engine, ConsentEvent, outs)
    _insert(engine, Suppression, suppressions)
    with session_scope(engine) as session:
        emails = session.execute(
            select(Message.id, Message.sent_at).where(
                Message.channel == "email", Message.customer_id.like("B%")
            )
        ).all()
    events = [
        {
            "message_id": mid,
            "channel": "email",
            "provider": "sendgrid",
            "provider_event_id": f"bench-{mid}",
            "event_type": "complained" if rng.random() < 0.001 else "delivered",
            "occurred_at": sent,
            "received_at": sent,
        }
        for mid, sent in emails
    ]
    _insert(engine, DeliveryEventRecord, events)
    return {"messages": len(messages), "objections": len(outs), "events": len(events)}


def _consent(cid: str, scope: str, at: datetime, rng: random.Random) -> dict:
    source = rng.choice(
        ["sms:STOP", "email:list-unsubscribe", "web:unsubscribe-page", "call_centre:a1", "branch"]
    )
    return {"customer_id": cid, "scope": scope, "choice": "opt_out", "source": source, "recorded_at": at}


def crowd_outbox(outbox: Path, files: int) -> None:
    """Other customers' message files, as the outbox channels write them."""
    folder = outbox / "2026-03-02" / "sms"
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(files):
        body = {"id": str(10_000_000 + n), "to": f"+316{n:08d}", "body": "Anne, ...", "offer": "KIDS_SAVINGS"}
        (folder / f"{10_000_000 + n}.json").write_text(json.dumps(body), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--url", default=None)
    parser.add_argument("--outbox-files", type=int, default=20_000)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-compliance-"))
    url = args.url or f"sqlite:///{workdir / 'bench.db'}"
    machine = f"{platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()}"
    print(f"database: {url.split('@')[-1]}; {machine}")
    upgrade(url)
    engine = make_engine(url)
    clock = time.perf_counter()
    counts = month(engine, args.customers)
    outbox, reports = workdir / "outbox", workdir / "reports"
    subject_seed.seed(engine, outbox, reports)
    crowd_outbox(outbox, args.outbox_files)
    seeded = time.perf_counter() - clock
    print(f"seeded {args.customers:,} customers, {counts} and the subject in {seeded:.1f} s")

    clock = time.perf_counter()
    result = accountability.build(engine, MONTH, subject_seed.OFFERS)
    figures = time.perf_counter() - clock
    chart = accountability.charts_png(result)
    (workdir / "report.html").write_text(accountability.to_html(result, chart), encoding="utf-8")
    (workdir / "report.pdf").write_bytes(accountability.to_pdf(result, chart))
    total = time.perf_counter() - clock
    contacts = result.total().contacts
    print(f"report: {contacts:,} contacts; figures {figures:.2f} s, with charts, HTML and PDF {total:.2f} s")

    clock = time.perf_counter()
    data = access.collect(engine, "C7")
    access.write(data, workdir / "access")
    access.record(engine, "C7", 2)
    print(f"export of one customer: {time.perf_counter() - clock:.2f} s")

    clock = time.perf_counter()
    erased = erase(engine, "C7", [outbox, reports], actor="bench")
    seconds = time.perf_counter() - clock
    rows = sum(erased.rows.values())
    print(
        f"erasure of one customer: {seconds:.2f} s ({rows} rows, {len(erased.files.deleted)} files deleted)"
    )
    engine.dispose()


if __name__ == "__main__":
    main()
