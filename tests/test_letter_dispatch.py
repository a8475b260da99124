"""A day's letters end to end: decide, dispatch through the letter channel, build print batches."""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime

from pypdf import PdfReader
from sqlalchemy import select

from channels import load_channel
from outreach import ledger
from outreach.config import Settings, load_offers
from outreach.db import session_scope
from outreach.dispatch import Dispatcher
from outreach.models import Message
from outreach.planning import decide_day
from outreach.printing import build_print_batches
from tests.factories import add_candidates, add_customers, customer
from tests.fixture_files import OFFERS_FILE

DAY = date(2026, 11, 18)
NOON = datetime(2026, 11, 18, 11, 0, tzinfo=UTC)
POSTCODES = ["9711 AB", "1012 JS", "3511 LX", "2511 CV", "6211 LH"]


def test_letters_are_written_indexed_and_batched(engine, tmp_path):
    # no valid email or mobile: the offer's channel plan falls through to a letter
    rows = [
        customer(f"C{i}", first_name=name, email_valid=False, mobile_valid=False, postal_code=pc)
        for i, (name, pc) in enumerate(
            zip(["Zoë", "Anne", "Łukasz", "Siobhán", "Daan"], POSTCODES, strict=True)
        )
    ]
    add_customers(engine, *rows)
    add_candidates(engine, DAY, *[(row["customer_id"], "KIDS_SAVINGS") for row in rows])
    offers = load_offers(OFFERS_FILE)
    decide_day(engine, DAY, offers, now=NOON)
    settings = Settings(database_url=str(engine.url), outbox_dir=tmp_path / "outbox")
    channel = load_channel("letter", "outbox", outbox_dir=settings.outbox_dir)
    with session_scope(engine) as session:
        ids = ledger.due_ids(session, DAY, "letter", NOON)
    report = Dispatcher(engine, settings, offers, channel, "w1").send_ids(ids)
    assert (report.claimed, report.sent, report.failed) == (5, 5, 0)

    batches = build_print_batches(settings.outbox_dir, DAY, 2)
    assert len(batches) == 3
    manifest = []
    for batch in batches:
        with (batch / "manifest.csv").open() as handle:
            manifest += [dict(row, batch=batch) for row in csv.DictReader(handle)]
    assert [r["postcode"] for r in manifest] == sorted(POSTCODES)
    with session_scope(engine) as session:
        ledger_ids = {str(m.id): m.customer_id for m in session.scalars(select(Message))}
    assert {r["letter_id"]: r["customer_id"] for r in manifest} == ledger_ids

    first = next(r for r in manifest if r["customer_id"] == "C0")
    text = PdfReader(first["batch"] / first["file"]).pages[0].extract_text()
    assert "Zoë de Vries" in text and "Beste Zoë," in text and "9711 AB  UTRECHT" in text
    assert "Ons kenmerk" in text and first["letter_id"] in text and "18 november 2026" in text
