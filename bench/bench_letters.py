"""Letters per second: render N print-ready letter PDFs through the letter channel, in one process
and with one process per core, then build the print batches.

    python bench/bench_letters.py                 # 10,000 letters, 1 process and all cores
    python bench/bench_letters.py -n 2000 --processes 2

What is timed is the channel's work: laying out and writing the PDF, its SHA-256 and the index
row. The templates are rendered beforehand (timed separately) as the dispatcher does.
Results go in bench/results/letters.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import resource
import shutil
import tempfile
import time
from datetime import date
from multiprocessing import get_context
from pathlib import Path

from faker import Faker

from channels.base import Address, OutboundMessage
from channels.letter_pdf import INDEX_NAME, PdfLetterChannel
from outreach.config import load_offers
from outreach.printing import build_print_batches
from outreach.rendering import Renderer, message_context

REPO = Path(__file__).resolve().parent.parent
RUN_DATE = date(2019, 6, 3)
CHUNK = 250


def make_messages(count: int, seed: int = 7) -> list[OutboundMessage]:
    """Synthetic customers (Faker nl_NL, 15 % English), the offers that go by letter."""
    fake = Faker("nl_NL")
    Faker.seed(seed)
    rng = random.Random(seed)
    offers = load_offers(REPO / "offers.yaml").offers
    renderer = Renderer(REPO / "templates")
    messages = []
    for n in range(count):
        offer = rng.choice(offers)
        language = "en" if rng.random() < 0.15 else "nl"
        customer = {
            "customer_id": f"C{n:08d}",
            "first_name": fake.first_name(),
            "last_name": fake.last_name(),
            "language": language,
        }
        trigger = {"trigger": "large_balance", "trigger_ref": f"TX{n}", "score": rng.random()}
        if rng.random() < 0.5:
            trigger.update(amount=round(rng.uniform(5_000, 90_000), 2), date=RUN_DATE)
        context = message_context(customer, offer, trigger, RUN_DATE, None)
        rendered = renderer.render("letter", offer.template_for("letter"), language, context)
        messages.append(
            OutboundMessage(
                message_id=str(100_000 + n),
                channel="letter",
                customer_id=customer["customer_id"],
                offer_code=offer.code,
                run_date=RUN_DATE,
                to=customer["customer_id"],
                body=rendered.body,
                subject=rendered.subject,
                language=rendered.language,
                address=Address(
                    name=f"{customer['first_name']} {customer['last_name']}",
                    street=fake.street_name(),
                    house_number=fake.building_number(),
                    postal_code=fake.postcode(),
                    city=fake.city(),
                ),
            )
        )
    return messages


_channel: PdfLetterChannel | None = None


def _init(outbox: str) -> None:
    global _channel
    _channel = PdfLetterChannel(outbox)


def _send(chunk: list[OutboundMessage]) -> int:
    assert _channel is not None
    outcome = _channel.send_batch(chunk)
    if outcome.errors:
        raise RuntimeError(f"{len(outcome.errors)} letters failed: {next(iter(outcome.errors.values()))}")
    return len(outcome.results)


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children: unaffected by other load on the box."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run(messages: list[OutboundMessage], processes: int, outbox: Path) -> tuple[float, float]:
    """Wall-clock and CPU seconds to write every letter."""
    chunks = [messages[i : i + CHUNK] for i in range(0, len(messages), CHUNK)]
    cpu = _cpu_seconds()
    start = time.perf_counter()
    if processes == 1:
        _init(str(outbox))
        done = sum(_send(chunk) for chunk in chunks)
    else:
        pool = get_context("fork").Pool(processes, initializer=_init, initargs=(str(outbox),))
        done = sum(pool.imap_unordered(_send, chunks))
        pool.close()
        pool.join()
    elapsed = time.perf_counter() - start
    cpu = _cpu_seconds() - cpu
    folder = outbox / RUN_DATE.isoformat() / "letter"
    written = len(list(folder.glob("*.pdf")))
    indexed = sum(1 for _ in (folder / INDEX_NAME).open()) - 1
    if not done == written == indexed == len(messages):
        raise RuntimeError(
            f"expected {len(messages)} letters, got {done} sent, {written} files, {indexed} indexed"
        )
    return elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--letters", type=int, default=10_000)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1, help="for the parallel run")
    parser.add_argument("--batch-size", type=int, default=500, help="letters per print batch")
    args = parser.parse_args()

    start = time.perf_counter()
    messages = make_messages(args.letters)
    prepared = time.perf_counter() - start
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(
        f"rendered {len(messages)} letter templates in {prepared:.1f} s ({len(messages) / prepared:,.0f}/s)"
    )
    work = Path(tempfile.mkdtemp(prefix="bench-letters-"))
    try:
        for processes in (1, args.processes):
            load = os.getloadavg()[0]
            outbox = work / f"p{processes}"
            elapsed, cpu = run(messages, processes, outbox)
            folder = outbox / RUN_DATE.isoformat() / "letter"
            size = sum(p.stat().st_size for p in folder.glob("*.pdf")) / len(messages)
            print(
                f"{processes} process(es): {len(messages)} letters in {elapsed:.1f} s = "
                f"{len(messages) / elapsed:,.0f} letters/s; "
                f"{cpu / len(messages) * 1000:.2f} ms CPU per letter; "
                f"average PDF {size / 1024:.0f} KiB; load average before {load:.1f}"
            )
        start = time.perf_counter()
        batches = build_print_batches(outbox, RUN_DATE, args.batch_size)
        elapsed = time.perf_counter() - start
        print(f"print batches: {len(batches)} of at most {args.batch_size} built in {elapsed:.1f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
