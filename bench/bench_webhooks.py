"""Webhook intake: signed callbacks into `outreach serve` (uvicorn, its own process), end to end.

    python bench/bench_webhooks.py [--sms 2000] [--email 20000] [--batch 1000] [--db sqlite|postgresql]
                                   [--senders 1] [--workers 1]

Seeds N sent SMS and N sent emails in a fresh database, starts ``outreach serve`` on a free port,
then posts what the providers would: one signed Twilio status callback per SMS (``delivered``,
one request each, over ``--senders`` connections) and SendGrid's signed event batches (``processed`` +
``delivered`` per mail, ``--batch`` events per POST). Every request is verified, stored once and
moves its message; the run checks at the end that every message is ``delivered``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from sqlalchemy import create_engine, func, insert, select, text  # noqa: E402
from twilio.request_validator import RequestValidator  # noqa: E402

from outreach.db import make_engine, session_scope, upgrade  # noqa: E402
from outreach.models import Customer, Message  # noqa: E402

TOKEN = "bench-auth-token"
DAY = date(2026, 11, 18)
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def database(kind: str) -> tuple[str, callable]:
    if kind == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix="bench-webhooks-"))
        return f"sqlite:///{folder / 'outreach.db'}", lambda: None
    name = f"bench_webhooks_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}", drop


def seed(url: str, sms: int, email: int) -> None:
    upgrade(url)
    stamp = datetime(2026, 11, 18, 10, tzinfo=UTC)
    customers, messages = [], []
    for n in range(sms + email):
        cid = f"B{n:07d}"
        customers.append(
            {
                "customer_id": cid,
                "first_name": "A",
                "last_name": "B",
                "mobile": f"+316{n:08d}",
                "mobile_valid": True,
                "email": f"b{n}@example.nl",
                "email_valid": True,
            }
        )
        channel = "sms" if n < sms else "email"
        messages.append(
            {
                "id": n + 1,
                "idempotency_key": f"{DAY}:{cid}:BENCH:{channel}",
                "run_date": DAY,
                "customer_id": cid,
                "offer_code": "BENCH",
                "channel": channel,
                "status": "sent",
                "attempts": 1,
                "provider": "twilio" if channel == "sms" else "sendgrid",
                "provider_id": f"SM{n:032d}" if channel == "sms" else "xmsg",
                "created_at": stamp,
                "updated_at": stamp,
                "sent_at": stamp,
            }
        )
    engine = make_engine(url)
    with session_scope(engine) as session:
        session.execute(insert(Customer), customers)
        session.execute(insert(Message), messages)
    engine.dispose()


def start_serve(
    settings: dict[str, str], workers: int = 1, stderr=subprocess.DEVNULL
) -> tuple[subprocess.Popen, str]:
    """``outreach serve`` on a free port with these OUTREACH_* settings, once /healthz answers."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OUTREACH_PUBLIC_URL": base, **settings}
    command = [sys.executable, "-c", "from outreach.cli import main; main()", "serve", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--log-level", "warning", "--workers", str(workers)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )
    for _ in range(400):  # 20 s and more on a loaded machine
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return process, base
        except httpx.HTTPError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("outreach serve did not start")


def serve(url: str, public_key: str, workers: int = 1) -> tuple[subprocess.Popen, str]:
    settings = {
        "OUTREACH_DATABASE_URL": url,
        "TWILIO_AUTH_TOKEN": TOKEN,
        "OUTREACH_SENDGRID_WEBHOOK_PUBLIC_KEY": public_key,
        "OUTREACH_UNSUBSCRIBE_SECRET": "bench",
    }
    return start_serve(settings, workers)


def bench_twilio(base: str, sms: int, senders: int) -> float:
    """One signed callback per request; ``senders`` connections at once (Twilio posts in parallel)."""
    validator = RequestValidator(TOKEN)
    url = f"{base}/webhooks/twilio/status"

    def post_range(numbers: range) -> None:
        with httpx.Client(timeout=60) as client:
            for n in numbers:
                params = {
                    "MessageSid": f"SM{n:032d}",
                    "MessageStatus": "delivered",
                    "To": f"+316{n:08d}",
                    "AccountSid": "AC" + "0" * 32,
                    "ApiVersion": "2010-04-01",
                }
                signature = validator.compute_signature(url, params)
                response = client.post(url, data=params, headers={"X-Twilio-Signature": signature})
                assert response.status_code == 204, response.text

    started = time.perf_counter()
    with ThreadPoolExecutor(senders) as pool:
        list(pool.map(post_range, [range(i, sms, senders) for i in range(senders)]))
    return time.perf_counter() - started


def bench_sendgrid(
    client: httpx.Client, base: str, key, sms: int, email: int, batch: int
) -> tuple[float, int]:
    events = []
    for n in range(sms, sms + email):
        common = {"email": f"b{n}@example.nl", "sg_message_id": f"xmsg.{n}", "outreach_id": str(n + 1)}
        events.append({**common, "event": "processed", "timestamp": 1_795_000_000, "sg_event_id": f"p{n}"})
        events.append({**common, "event": "delivered", "timestamp": 1_795_000_001, "sg_event_id": f"d{n}"})
    largest = 0
    started = time.perf_counter()
    for start in range(0, len(events), batch):
        body = json.dumps(events[start : start + batch]).encode()
        largest = max(largest, len(body))
        stamp = str(int(time.time()))
        signature = base64.b64encode(key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()
        response = client.post(
            f"{base}/webhooks/sendgrid/events",
            content=body,
            headers={
                "X-Twilio-Email-Event-Webhook-Signature": signature,
                "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
                "Content-Type": "application/json",
            },
        )
        assert response.status_code == 204, response.text
    return time.perf_counter() - started, largest


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sms", type=int, default=2000)
    parser.add_argument("--email", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=1000, help="SendGrid events per POST")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--senders", type=int, default=1, help="concurrent Twilio callback connections")
    parser.add_argument("--workers", type=int, default=1, help="`outreach serve --workers`: server processes")
    args = parser.parse_args()
    url, drop = database(args.db)
    key = ec.generate_private_key(ec.SECP256R1())
    public = base64.b64encode(
        key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ).decode()
    seed(url, args.sms, args.email)
    process, base = serve(url, public, args.workers)
    try:
        with httpx.Client(timeout=60) as client:
            tw = bench_twilio(base, args.sms, args.senders)
            sg, largest = bench_sendgrid(client, base, key, args.sms, args.email, args.batch)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=20)
    engine = make_engine(url)
    with session_scope(engine) as session:
        delivered = session.scalar(
            select(func.count()).select_from(Message).where(Message.status == "delivered")
        )
    engine.dispose()
    drop()
    assert delivered == args.sms + args.email, f"{delivered} delivered of {args.sms + args.email}"
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, db {args.db}, {args.workers} server process(es)"
    )
    print("| provider | what | requests | events | seconds | rate |")
    print("|---|---|---:|---:|---:|---:|")
    print(
        f"| Twilio | status callbacks, 1 per request, {args.senders} connection(s) "
        f"| {args.sms:,} | {args.sms:,} | {tw:.2f} "
        f"| {args.sms / tw:,.0f} callbacks/s |"
    )
    posts = -(-2 * args.email // args.batch)
    print(
        f"| SendGrid | event batches of {args.batch:,} ({largest / 1024:,.0f} KiB) | {posts:,} "
        f"| {2 * args.email:,} "
        f"| {sg:.2f} | {2 * args.email / sg:,.0f} events/s |"
    )
    print(f"all {delivered:,} messages delivered")


if __name__ == "__main__":
    main()
