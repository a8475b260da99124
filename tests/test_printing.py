"""Print batches: postcode order, at most N letters each, manifests a print house can check."""

from __future__ import annotations

import csv
import hashlib
from datetime import date
from pathlib import Path

import pytest
from pypdf import PdfReader

from channels.base import Address, OutboundMessage
from channels.letter_pdf import PdfLetterChannel
from outreach.printing import MANIFEST_COLUMNS, PrintBatchError, build_print_batches

DAY = date(2019, 6, 3)
POSTCODES = ["9711 AB", "1012 JS", "3511 LX", "1012 AA", "2511 CV", "6211 LH", "1234ab", "8011 PK"]


def message(n: int, postcode: str, country: str = "NL", paragraphs: int = 1) -> OutboundMessage:
    return OutboundMessage(
        message_id=f"L{n:03d}",
        channel="letter",
        customer_id=f"C{n:03d}",
        offer_code="KIDS_SAVINGS",
        run_date=DAY,
        to=f"C{n:03d}",
        body="Beste klant,\n\n" + "\n\n".join(["Een alinea tekst voor de brief. " * 12] * paragraphs),
        subject="Onderwerp",
        address=Address(f"Klant {n}", "Straat", str(n), postcode, "Plaats", country),
    )


@pytest.fixture
def outbox(tmp_path) -> Path:
    channel = PdfLetterChannel(tmp_path)
    messages = [message(n, pc) for n, pc in enumerate(POSTCODES)]
    messages.append(message(50, "1000", "BE"))
    messages.append(message(51, "5611 AZ", paragraphs=14))  # a multi-page letter
    assert not channel.send_batch(messages).errors
    return tmp_path


def manifest(batch: Path) -> list[dict[str, str]]:
    with (batch / "manifest.csv").open(newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames) == MANIFEST_COLUMNS
        return list(reader)


def test_batches_are_sorted_by_postcode_and_at_most_n(outbox):
    batches = build_print_batches(outbox, DAY, 4)
    assert [b.name for b in batches] == ["batch-001", "batch-002", "batch-003"]
    rows = [row for batch in batches for row in manifest(batch)]
    assert [len(manifest(b)) for b in batches] == [4, 4, 2]
    assert [r["postcode"] for r in rows] == [
        "1012 AA",
        "1012 JS",
        "1234ab",
        "2511 CV",
        "3511 LX",
        "5611 AZ",
        "6211 LH",
        "8011 PK",
        "9711 AB",
        "1000",  # abroad last
    ]
    assert len({r["letter_id"] for r in rows}) == 10  # every letter exactly once


def test_manifest_matches_the_files(outbox):
    for batch in build_print_batches(outbox, DAY, 4):
        files = sorted(p.name for p in batch.glob("*.pdf"))
        rows = manifest(batch)
        assert files == [r["file"] for r in rows]  # file names sort in print order
        for row in rows:
            path = batch / row["file"]
            assert hashlib.sha256(path.read_bytes()).hexdigest() == row["sha256"]
            assert len(PdfReader(path).pages) == int(row["pages"])
            assert row["file"].endswith(f"_{row['letter_id']}.pdf") and row["customer_id"]
    long_letter = next(
        r for b in build_print_batches(outbox, DAY, 4) for r in manifest(b) if r["letter_id"] == "L051"
    )
    assert int(long_letter["pages"]) >= 2
    with (outbox / "2019-06-03" / "print" / "batches.csv").open() as handle:
        summary = list(csv.DictReader(handle))
    assert [int(s["letters"]) for s in summary] == [4, 4, 2]
    assert summary[0]["first_postcode"] == "1012 AA"


def test_rebuilding_gives_the_same_batches(outbox):
    first = build_print_batches(outbox, DAY, 3)
    before = {p.relative_to(outbox): p.read_bytes() for p in (outbox / "2019-06-03" / "print").rglob("*.csv")}
    again = build_print_batches(outbox, DAY, 3)
    after = {p.relative_to(outbox): p.read_bytes() for p in (outbox / "2019-06-03" / "print").rglob("*.csv")}
    assert first == again and before == after


def test_a_retried_letter_is_batched_once(outbox):
    PdfLetterChannel(outbox).send_batch([message(3, POSTCODES[3])])  # written and indexed again
    rows = [row for batch in build_print_batches(outbox, DAY, 100) for row in manifest(batch)]
    assert [r["letter_id"] for r in rows].count("L003") == 1 and len(rows) == 10


def test_no_letters_no_batches(tmp_path):
    assert build_print_batches(tmp_path, DAY, 10) == []


def test_a_pdf_missing_from_the_index_stops_the_build(outbox):
    (outbox / "2019-06-03" / "letter" / "stray.pdf").write_bytes(b"%PDF-1.4")
    with pytest.raises(PrintBatchError, match=r"stray\.pdf: letter PDF not in index\.csv"):
        build_print_batches(outbox, DAY, 10)


def test_a_changed_or_missing_letter_stops_the_build(outbox):
    folder = outbox / "2019-06-03" / "letter"
    (folder / "L002.pdf").write_bytes(b"%PDF-1.4 changed")
    with pytest.raises(PrintBatchError, match=r"L002\.pdf: SHA-256 differs"):
        build_print_batches(outbox, DAY, 10)
    (folder / "L002.pdf").unlink()
    with pytest.raises(PrintBatchError, match=r"L002\.pdf: in index\.csv but the file is missing"):
        build_print_batches(outbox, DAY, 10)


def test_a_broken_index_row_is_named(outbox):
    index = outbox / "2019-06-03" / "letter" / "index.csv"
    with index.open("a") as handle:
        handle.write("L900,C900,1234 AB,NL,two,abc,L900.pdf\n")
    with pytest.raises(PrintBatchError, match=r"index\.csv, line 12: pages 'two'"):
        build_print_batches(outbox, DAY, 10)


def _write_letters(outbox: str, start: int) -> None:
    PdfLetterChannel(outbox).send_batch([message(n, f"{1000 + n} AA") for n in range(start, start + 15)])


def test_parallel_writers_keep_the_index_whole(tmp_path):
    from multiprocessing import get_context

    context = get_context("spawn")  # a clean interpreter: a fork would inherit other tests' servers
    workers = [
        context.Process(target=_write_letters, args=(str(tmp_path), start)) for start in (100, 200, 300)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    rows = [row for batch in build_print_batches(tmp_path, DAY, 20) for row in manifest(batch)]
    assert len(rows) == 45 and len({r["letter_id"] for r in rows}) == 45
    assert [r["postcode"] for r in rows] == sorted(r["postcode"] for r in rows)
