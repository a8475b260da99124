"""The synthetic bank: deterministic for a seed, in the import contract, realistic enough to find."""

from __future__ import annotations

import csv
import re
from collections import Counter
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from outreach.candidates import PaymentSignals, load_candidates
from outreach.importer import import_directory
from outreach.imports.contracts import CONTRACTS
from outreach.models import Candidate, Customer, Transaction
from outreach_dev.synth import generate

AS_OF = date(2026, 11, 20)


def read(path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    """3,000 customers: enough for the rarer cases (deceased, other time zones) to appear."""
    folder = tmp_path_factory.mktemp("bank")
    summary = generate(folder, customers=3000, seed=11, as_of=AS_OF)
    return summary, {kind: read(path) for kind, path in summary.paths().items()}


def test_same_seed_same_bytes_other_seed_other_bank(tmp_path):
    first = generate(tmp_path / "a", customers=150, seed=7, as_of=AS_OF)
    second = generate(tmp_path / "b", customers=150, seed=7, as_of=AS_OF)
    other = generate(tmp_path / "c", customers=150, seed=8, as_of=AS_OF)
    for kind, path in first.paths().items():
        assert path.read_bytes() == second.paths()[kind].read_bytes(), kind
    assert first.paths()["customers"].read_bytes() != other.paths()["customers"].read_bytes()
    assert first.rows == second.rows


def test_files_follow_the_import_contract(bank):
    summary, _ = bank
    for kind, path in summary.paths().items():
        header = path.read_text(encoding="utf-8").splitlines()[0].split(",")
        contract = CONTRACTS[kind]
        assert set(contract.required) <= set(header) <= set(contract.columns), kind


def test_the_bank_looks_dutch_and_has_what_the_signals_need(bank):
    summary, files = bank
    customers = files["customers"]
    assert len(customers) == 3000
    assert all(re.fullmatch(r"[1-9]\d{3} [A-Z]{2}", c["postal_code"]) for c in customers)
    assert sum(c["mobile"].startswith("+316") for c in customers) / 3000 > 0.7
    assert sum(c["language"] == "en" for c in customers) > 50
    assert Counter(c["timezone"] for c in customers)["Europe/Amsterdam"] < 3000
    # a few per cent broken or missing contact data
    assert 0.02 < sum("@" not in c["email"] or c["email"].endswith("@") for c in customers) / 3000 < 0.08

    consents = files["consents"]
    global_out = {c["customer_id"] for c in consents if c["scope"] == "all" and c["choice"] == "opt_out"}
    assert 0.08 < len(global_out) / 3000 < 0.14
    assert {c["scope"] for c in consents} >= {"all", "sms", "email", "letter", "phone"}
    assert {s["reason"] for s in files["suppressions"]} == {
        "vulnerable",
        "arrears",
        "deceased",
        "minor",
        "complaint",
    }

    transactions = files["transactions"]
    window_start = AS_OF - timedelta(days=3)
    recent = [t for t in transactions if datetime.fromisoformat(t["booked_at"]).date() >= window_start]
    assert all(datetime.fromisoformat(t["booked_at"]).date() < AS_OF for t in transactions)
    kinderbijslag = [t for t in recent if "Kinderbijslag" in t["description"]]
    assert kinderbijslag and all(t["counterparty_name"] == "Sociale Verzekeringsbank" for t in kinderbijslag)
    assert any(t["mcc"] == "6011" and "Schiphol" in t["description"] for t in recent)
    assert any(t["counterparty_name"] in ("KLM Royal Dutch Airlines", "Transavia") for t in recent)
    assert any("AOW" in t["description"] for t in transactions)  # SVB money that is not child benefit
    # every customer opens with a balance; the balance is the sum of the amounts
    openings = [t for t in transactions if t["description"] == "Beginsaldo"]
    assert len(openings) == 3000
    per_customer = len(transactions) / 3000
    assert 15 < per_customer < 40


def test_generated_files_round_trip_through_import(db_url, tmp_path):
    from outreach.db import make_engine

    summary = generate(tmp_path / "bank", customers=300, seed=3, as_of=AS_OF)
    engine = make_engine(db_url)
    try:
        reports = import_directory(engine, summary.out_dir)
        for kind, report in reports.items():
            assert report.rejected == 0, [str(r) for r in report.rejections[:3]]
            assert report.inserted == summary.rows[kind], kind
        with engine.connect() as conn:
            assert conn.scalar(select(func.count()).select_from(Customer)) == 300
            balance = conn.scalar(
                select(func.sum(Transaction.amount)).where(Transaction.customer_id == "C0000001")
            )
        rows = [t for t in read(summary.paths()["transactions"]) if t["customer_id"] == "C0000001"]
        assert Decimal(str(balance)).quantize(Decimal("0.01")) == sum(Decimal(t["amount"]) for t in rows)
    finally:
        engine.dispose()


def test_the_day_after_yields_candidates_of_every_offer(sqlite_url, tmp_path):
    """~45% of customers get a candidate on the day (a few thousand for the 10,000 of the demo)."""
    from outreach.db import make_engine

    summary = generate(tmp_path / "bank", customers=1000, seed=5, as_of=AS_OF)
    engine = make_engine(sqlite_url)
    import_directory(engine, summary.out_dir)
    report = load_candidates(engine, AS_OF, PaymentSignals(engine))
    with engine.connect() as conn:
        offers = Counter(conn.scalars(select(Candidate.offer_code)))
    engine.dispose()
    assert set(offers) == {"KIDS_SAVINGS", "SAVINGS_BOOST", "INVEST_CALL", "TRAVEL_INSURANCE", "CREDIT_CARD"}
    assert 250 < report.loaded < 700
    assert offers["INVEST_CALL"] < offers["SAVINGS_BOOST"]
