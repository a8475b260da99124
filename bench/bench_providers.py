"""Provider adapters vs the bare SDK, against the local provider servers in their own process.

    python bench/bench_providers.py [--sms 3000] [--email 20000]

SMS: the bare twilio SDK call in a loop on one thread (the ceiling one SDK client reaches on this
machine) vs TwilioSMS.send_batch at several pool sizes. Email: the bare sendgrid SDK with one mail
per request, the bare SDK with 1,000 personalizations per request, and SendGridEmail.send_batch.
The servers run as ``outreach fake-providers`` in a separate process (fast spec checks on every
request, no faults), so client and server do not share a GIL.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from twilio.http.http_client import TwilioHttpClient  # noqa: E402
from twilio.rest import Client  # noqa: E402

from channels.base import OutboundMessage  # noqa: E402
from channels.sendgrid_email import SendGridEmail  # noqa: E402
from channels.twilio_sms import TwilioSMS  # noqa: E402

SID, TOKEN, KEY, SENDER = "AC" + "0" * 32, "test-auth-token", "SG.test-key", "+3197010000001"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_servers() -> tuple[subprocess.Popen, str, str]:
    tw, sg = free_port(), free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from outreach.cli import main; main()",
            "fake-providers",
            "--twilio-port",
            str(tw),
            "--sendgrid-port",
            str(sg),
            "--no-callbacks",
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
    )
    for port in (tw, sg):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
    return process, f"http://127.0.0.1:{tw}", f"http://127.0.0.1:{sg}"


def sms(n: int) -> OutboundMessage:
    return OutboundMessage(
        str(n),
        "sms",
        f"C{n}",
        "TRAVEL_INSURANCE",
        date(2026, 11, 18),
        f"+316{n:08d}",
        f"Beste klant {n}, reist u binnenkort? Bekijk onze reisverzekering. Stop? Sms STOP",
    )


def mail(n: int) -> OutboundMessage:
    return OutboundMessage(
        str(n),
        "email",
        f"C{n}",
        "KIDS_SAVINGS",
        date(2026, 11, 18),
        f"klant{n}@example.nl",
        f"Beste klant {n},\n\nOpen een kinderspaarrekening en spaar voor later.\n\nMet vriendelijke groet",
        subject=f"Kinderspaarrekening voor u, klant {n}",
        html=f"<p>Beste klant {n},</p><p>Open een kinderspaarrekening en spaar voor later.</p>",
        campaign="bench",
        unsubscribe_url=f"https://bank.example/u/{n}",
    )


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f}/s"


def bench_sms(url: str, n: int) -> list[tuple[str, int, float]]:
    rows = []
    client = Client(SID, TOKEN, http_client=TwilioHttpClient(timeout=10))
    client.api.base_url = url
    messages = [sms(i) for i in range(n)]
    client.messages.create(to=messages[0].to, from_=SENDER, body="warm-up")
    start = time.perf_counter()
    for m in messages:
        client.messages.create(
            to=m.to, from_=SENDER, body=m.body, status_callback="https://bank.example/s", validity_period=3600
        )
    rows.append(("bare SDK loop, 1 thread (ceiling)", n, time.perf_counter() - start))
    for workers in (1, 2, 4):
        adapter = TwilioSMS(
            SID,
            TOKEN,
            from_=SENDER,
            api_url=url,
            status_callback="https://bank.example/s",
            validity_period=3600,
            timeout=10,
            concurrency=workers,
        )
        adapter.send_batch(messages[:workers])  # warm the clients
        start = time.perf_counter()
        outcome = adapter.send_batch(messages)
        elapsed = time.perf_counter() - start
        assert not outcome.errors, list(outcome.errors.values())[:3]
        adapter.close()
        rows.append((f"TwilioSMS.send_batch, {workers} thread(s)", n, elapsed))
    return rows


def bench_email(url: str, n: int) -> list[tuple[str, int, float]]:
    from sendgrid import SendGridAPIClient

    rows = []
    messages = [mail(i) for i in range(n)]
    sg = SendGridAPIClient(api_key=KEY, host=url)
    adapter = SendGridEmail(KEY, "aanbod@bank.example", api_url=url, asm_group_id=42, categories=["offers"])
    single = messages[: min(n, 1000)]
    start = time.perf_counter()
    for m in single:
        payload = {
            "from": {"email": "aanbod@bank.example"},
            "subject": m.subject,
            "personalizations": [{"to": [{"email": m.to}], "custom_args": {"outreach_id": m.message_id}}],
            "content": [{"type": "text/plain", "value": m.body}, {"type": "text/html", "value": m.html}],
        }
        sg.client.mail.send.post(request_body=payload, timeout=10)
    rows.append(("bare SDK, 1 mail per request, 1 thread", len(single), time.perf_counter() - start))
    chunks = [list(adapter.chunks(messages[i : i + 1000]))[0] for i in range(0, n, 1000)]
    start = time.perf_counter()
    for chunk in chunks:
        sg.client.mail.send.post(request_body=adapter.payload(chunk), timeout=30)
    rows.append(("bare SDK, 1,000 personalizations per request (ceiling)", n, time.perf_counter() - start))
    for workers in (1, 2):
        adapter = SendGridEmail(
            KEY,
            "aanbod@bank.example",
            api_url=url,
            asm_group_id=42,
            categories=["offers"],
            concurrency=workers,
            timeout=30,
        )
        start = time.perf_counter()
        outcome = adapter.send_batch(messages)
        elapsed = time.perf_counter() - start
        assert not outcome.errors, list(outcome.errors.values())[:3]
        adapter.close()
        rows.append((f"SendGridEmail.send_batch, {workers} thread(s)", n, elapsed))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sms", type=int, default=3000)
    parser.add_argument("--email", type=int, default=20000)
    args = parser.parse_args()
    process, twilio_url, sendgrid_url = start_servers()
    try:
        print(
            f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"{time.strftime('%Y-%m-%d')}"
        )
        print("| channel | what | messages | seconds | rate |\n|---|---|---:|---:|---:|")
        for channel, rows in (
            ("SMS", bench_sms(twilio_url, args.sms)),
            ("email", bench_email(sendgrid_url, args.email)),
        ):
            for label, count, seconds in rows:
                extra = f" ({count / seconds * 60:,.0f}/min)" if channel == "email" else ""
                print(f"| {channel} | {label} | {count:,} | {seconds:.2f} | {rate(count, seconds)}{extra} |")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)


if __name__ == "__main__":
    main()
