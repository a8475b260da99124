"""Candidate sources (payment signals, file drop, SQL query) and the idempotent candidate load."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from sqlalchemy import create_engine, func, insert, select, text

from outreach.candidates import (
    CandidateSource,
    CandidateSourceError,
    FileDrop,
    PaymentSignals,
    SqlQuery,
    load_candidates,
)
from outreach.importer import import_file
from outreach.models import Candidate, ImportRejection, Transaction

RUN = date(2026, 11, 20)
AMS = ZoneInfo("Europe/Amsterdam")
OFFERS = ["KIDS_SAVINGS", "SAVINGS_BOOST", "INVEST_CALL", "TRAVEL_INSURANCE", "CREDIT_CARD"]


def at(days_before: int, hour: int = 12) -> datetime:
    return datetime.combine(RUN - timedelta(days=days_before), time(hour), AMS).astimezone(UTC)


def tx(tid, customer, when, amount, name="", description="", mcc=None, city=None):
    return {
        "transaction_id": tid,
        "customer_id": customer,
        "booked_at": when,
        "amount": Decimal(amount),
        "currency": "EUR",
        "counterparty_name": name,
        "counterparty_iban": None,
        "description": description,
        "mcc": mcc,
        "city": city,
        "country": "NL",
    }


SVB = "Sociale Verzekeringsbank"
TRANSACTIONS = [
    # kids: child benefit from the SVB yesterday -> KIDS_SAVINGS
    tx("K0", "KIDS", at(90), "100.00", description="Beginsaldo"),
    tx("K1", "KIDS", at(1, 7), "591.20", SVB, "Kinderbijslag 2 kind(eren) kwartaal"),
    # pensioner: SVB money that is not child benefit -> nothing
    tx("P0", "PENSION", at(90), "100.00", description="Beginsaldo"),
    tx("P1", "PENSION", at(1, 7), "1500.00", SVB, "AOW-uitkering"),
    # savings: 10k + 30k the day before yesterday -> SAVINGS_BOOST (not INVEST_CALL)
    tx("S0", "SAVER", at(90), "10000.00", description="Beginsaldo"),
    tx("S1", "SAVER", at(30), "-500.00", "Albert Heijn", mcc="5411"),
    tx("S2", "SAVER", at(2), "30000.00", "Notariskantoor", "Erfenis"),
    tx("S3", "SAVER", at(1), "-50.00", "Jumbo", mcc="5411"),
    # rich: 20k + 150k -> SAVINGS_BOOST and INVEST_CALL, both triggered by R1
    tx("R0", "RICH", at(90), "20000.00", description="Beginsaldo"),
    tx("R1", "RICH", at(1), "150000.00", "Notariskantoor", "Verkoop woning"),
    # always rich: above the threshold for months; a salary now changes nothing -> nothing
    tx("A0", "ALWAYS", at(90), "60000.00", description="Beginsaldo"),
    tx("A1", "ALWAYS", at(1), "3000.00", "Werkgever BV", "Salaris"),
    # briefly rich: crossed yesterday, spent it again today-ish (still before the run) -> nothing
    tx("B0", "BRIEF", at(90), "1000.00", description="Beginsaldo"),
    tx("B1", "BRIEF", at(2), "30000.00", "Autobedrijf", "Verkoop auto"),
    tx("B2", "BRIEF", at(1), "-20000.00", "Autodealer", "Nieuwe auto"),
    # airport ATM at Schiphol -> TRAVEL_INSURANCE and CREDIT_CARD
    tx("F0", "FLYER", at(90), "500.00", description="Beginsaldo"),
    tx(
        "F1",
        "FLYER",
        at(2),
        "-100.00",
        description="Geldautomaat Schiphol Plaza",
        mcc="6011",
        city="Schiphol",
    ),
    tx(
        "F2",
        "FLYER",
        at(3, 1),
        "-20.00",
        description="Geldautomaat Utrecht Centraal",
        mcc="6011",
        city="Utrecht",
    ),
    # airline ticket (KLM, mcc 3010) -> travel offers with trigger airline_ticket
    tx("L0", "AIRLINE", at(90), "500.00", description="Beginsaldo"),
    tx("L1", "AIRLINE", at(3), "-450.00", "KLM Royal Dutch Airlines", "Vliegticket", mcc="3010"),
    # ordinary cash machine -> nothing
    tx(
        "T0", "TOWN", at(1), "-50.00", description="Geldautomaat Utrecht Centraal", mcc="6011", city="Utrecht"
    ),
    # too old (4 days) and on the run date itself (not yet complete) -> nothing
    tx("O1", "OLD", at(4), "-300.00", "Transavia", mcc="3136"),
    tx("D1", "TODAY", at(0, 9), "-300.00", "Transavia", mcc="3136"),
]


@pytest.fixture
def transactions(engine):
    with engine.begin() as conn:
        conn.execute(insert(Transaction), TRANSACTIONS)
    return engine


def stored(engine) -> list[tuple]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                Candidate.customer_id, Candidate.offer_code, Candidate.trigger, Candidate.trigger_ref
            ).order_by(Candidate.customer_id, Candidate.offer_code)
        ).all()
    return [tuple(r) for r in rows]


def test_each_payment_signal_yields_its_offer_with_the_triggering_transaction(transactions):
    engine = transactions
    signals = PaymentSignals(engine)
    assert isinstance(signals, CandidateSource)
    report = load_candidates(engine, RUN, signals, offer_codes=OFFERS)
    assert report.balanced and report.rejected == 0
    assert stored(engine) == [
        ("AIRLINE", "CREDIT_CARD", "airline_ticket", "L1"),
        ("AIRLINE", "TRAVEL_INSURANCE", "airline_ticket", "L1"),
        ("FLYER", "CREDIT_CARD", "airport_atm", "F1"),
        ("FLYER", "TRAVEL_INSURANCE", "airport_atm", "F1"),
        ("KIDS", "KIDS_SAVINGS", "child_benefit", "K1"),
        ("RICH", "INVEST_CALL", "very_large_balance", "R1"),
        ("RICH", "SAVINGS_BOOST", "large_balance", "R1"),
        ("SAVER", "SAVINGS_BOOST", "large_balance", "S2"),
    ]
    with engine.connect() as conn:
        rows = conn.execute(
            select(Candidate.customer_id, Candidate.offer_code, Candidate.score, Candidate.source)
        ).all()
    assert all(0.0 <= r.score <= 1.0 and r.source == "payment_signals" for r in rows)
    scores = {(r.customer_id, r.offer_code): r.score for r in rows}
    assert scores[("KIDS", "KIDS_SAVINGS")] == pytest.approx(0.8)  # two children
    assert scores[("RICH", "SAVINGS_BOOST")] > scores[("SAVER", "SAVINGS_BOOST")]  # more money, higher score
    # deterministic: the same day derived again gives the same rows and scores
    again = [c for chunk in PaymentSignals(engine).chunks(RUN) for c in chunk]
    assert {(c["customer_id"], c["offer_code"]): c["score"] for c in again} == scores


def test_thresholds_and_window_are_configurable(transactions):
    engine = transactions
    found = [c for chunk in PaymentSignals(engine, lookback_days=1).chunks(RUN) for c in chunk]
    assert {c["customer_id"] for c in found} == {"KIDS", "RICH"}  # yesterday only
    rich_only = PaymentSignals(engine, balance_threshold=Decimal("50000"), invest_threshold=Decimal("500000"))
    found = [c for chunk in rich_only.chunks(RUN) for c in chunk if "BALANCE" in c["trigger"].upper()]
    assert [(c["customer_id"], c["offer_code"]) for c in found] == [("RICH", "SAVINGS_BOOST")]


def test_loading_the_same_day_twice_adds_nothing(transactions):
    engine = transactions
    first = load_candidates(engine, RUN, PaymentSignals(engine))
    second = load_candidates(engine, RUN, PaymentSignals(engine))
    assert (first.loaded, first.duplicates) == (8, 0)
    assert (second.rows_read, second.loaded, second.duplicates, second.rejected) == (8, 0, 8, 0)
    assert len(stored(engine)) == 8


CANDIDATE_HEADER = "customer_id,offer_code,trigger,trigger_ref,score,candidate_date,campaign\n"


def test_file_drop_csv_rejects_bad_rows_with_file_row_field(engine, tmp_path):
    drop = tmp_path / "drops"
    drop.mkdir()
    (drop / "candidates-2026-11-20.csv").write_text(
        CANDIDATE_HEADER
        + "C1,KIDS_SAVINGS,crm_model,M-1,0.9,2026-11-20,winter\n"
        + "C2,credit_card,,,0.5,,\n"  # lower-case code accepted; empty trigger and date default
        + "C3,GOLD_CARD,crm_model,M-3,0.5,2026-11-20,\n"
        + "C4,SAVINGS_BOOST,crm_model,M-4,1.5,2026-11-20,\n"
        + "C5,SAVINGS_BOOST,crm_model,M-5,0.5,2026-11-19,\n"
        + ",SAVINGS_BOOST,crm_model,M-6,0.5,2026-11-20,\n"
        + "C7,SAVINGS_BOOST,crm_model,M-7,high,20-11-2026,\n"
        + "C1,KIDS_SAVINGS,crm_model,M-1,0.9,2026-11-20,repeat\n",
        encoding="utf-8",
    )
    source = FileDrop(drop / "candidates-{date}.csv")
    report = load_candidates(engine, RUN, source, offer_codes=OFFERS)
    assert (report.rows_read, report.loaded, report.duplicates, report.rejected) == (8, 2, 1, 5)
    assert report.balanced
    assert [str(r) for r in report.rejections] == [
        "candidates-2026-11-20.csv row 4, column offer_code: "
        "unknown offer 'GOLD_CARD' (not in the offers file)",
        "candidates-2026-11-20.csv row 5, column score: '1.5' is not between 0 and 1",
        "candidates-2026-11-20.csv row 6, column candidate_date: 2026-11-19 is not the run date 2026-11-20",
        "candidates-2026-11-20.csv row 7, column customer_id: empty, a value is required",
        "candidates-2026-11-20.csv row 8, column score: not a number 'high'; also candidate_date: "
        "not a date (YYYY-MM-DD) '20-11-2026'",
    ]
    with engine.connect() as conn:
        kept = conn.execute(
            select(ImportRejection.file, ImportRejection.row_number, ImportRejection.column_name).where(
                ImportRejection.batch_id == report.batch_id, ImportRejection.kind == "candidates"
            )
        ).all()
    assert sorted(r.row_number for r in kept) == [4, 5, 6, 7, 8]
    assert stored(engine) == [("C1", "KIDS_SAVINGS", "crm_model", "M-1"), ("C2", "CREDIT_CARD", "file", "")]
    # the next day's file is not there: a clear error, nothing half-loaded
    with pytest.raises(
        CandidateSourceError, match="candidates-2026-11-21.csv: no candidate file for 2026-11-21"
    ):
        load_candidates(engine, date(2026, 11, 21), source)
    (drop / "bad-2026-11-20.csv").write_text("customer_id,offer\nC1,KIDS_SAVINGS\n", encoding="utf-8")
    with pytest.raises(
        CandidateSourceError, match="bad-2026-11-20.csv: missing required columns offer_code, score"
    ):
        load_candidates(engine, RUN, FileDrop(drop / "bad-{date:%Y-%m-%d}.csv"))


def test_file_drop_parquet(engine, tmp_path):
    frame = pl.DataFrame(
        {
            "customer_id": ["C1", "C2", "C3"],
            "offer_code": ["TRAVEL_INSURANCE", "CREDIT_CARD", "CREDIT_CARD"],
            "trigger": ["model", "model", "model"],
            "trigger_ref": ["r1", "r2", "r3"],
            "score": [0.75, 0.5, -0.1],
            "candidate_date": [RUN, RUN, RUN],
        }
    )
    frame.write_parquet(tmp_path / "20261120.parquet")
    report = load_candidates(engine, RUN, FileDrop(tmp_path / "{date:%Y%m%d}.parquet"))
    assert (report.loaded, report.rejected) == (2, 1)
    assert str(report.rejections[0]) == "20261120.parquet row 3, column score: '-0.1' is not between 0 and 1"
    with engine.connect() as conn:
        assert conn.scalar(select(Candidate.score).where(Candidate.customer_id == "C1")) == pytest.approx(
            0.75
        )
    frame.drop("score").write_parquet(tmp_path / "20261121.parquet")
    with pytest.raises(CandidateSourceError, match="missing required column score"):
        load_candidates(engine, date(2026, 11, 21), FileDrop(tmp_path / "{date:%Y%m%d}.parquet"))


def test_sql_query_source(engine, tmp_path):
    warehouse_url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    warehouse = create_engine(warehouse_url)
    with warehouse.begin() as conn:
        conn.execute(text("create table propensity (klant text, product text, p real, dag date)"))
        conn.execute(
            text("insert into propensity values (:k, :o, :p, :d)"),
            [
                {"k": "C1", "o": "SAVINGS_BOOST", "p": 0.81, "d": "2026-11-20"},
                {"k": "C2", "o": "INVEST_CALL", "p": 0.4, "d": "2026-11-20"},
                {"k": "C3", "o": "INVEST_CALL", "p": 2.0, "d": "2026-11-20"},
                {"k": "C4", "o": "INVEST_CALL", "p": 0.9, "d": "2026-11-19"},
            ],
        )
    warehouse.dispose()
    query = (
        "select klant as customer_id, product as offer_code, 'propensity' as trigger, "
        "klant || '-' || dag as trigger_ref, p as score from propensity where dag = :run_date"
    )
    report = load_candidates(engine, RUN, SqlQuery(warehouse_url, query), offer_codes=OFFERS)
    assert (report.rows_read, report.loaded, report.rejected) == (3, 2, 1)
    assert str(report.rejections[0]) == "sql query row 3, column score: '2.0' is not between 0 and 1"
    assert stored(engine) == [
        ("C1", "SAVINGS_BOOST", "propensity", "C1-2026-11-20"),
        ("C2", "INVEST_CALL", "propensity", "C2-2026-11-20"),
    ]
    with pytest.raises(CandidateSourceError, match="the result has no column offer_code, score"):
        load_candidates(engine, RUN, SqlQuery(warehouse_url, "select klant as customer_id from propensity"))
    with pytest.raises(CandidateSourceError, match="sql query failed"):
        load_candidates(engine, RUN, SqlQuery(warehouse_url, "select * from nowhere"))


def test_import_candidates_file_takes_each_rows_date(engine, tmp_path):
    path = tmp_path / "candidates.csv"
    path.write_text(
        CANDIDATE_HEADER
        + "C1,KIDS_SAVINGS,crm,1,0.9,2026-11-19,\n"
        + "C1,KIDS_SAVINGS,crm,1,0.9,2026-11-20,\n"
        + "C2,KIDS_SAVINGS,crm,1,0.9,,\n",
        encoding="utf-8",
    )
    report = import_file(engine, "candidates", path, offer_codes=OFFERS)
    assert (report.inserted, report.rejected) == (2, 1)
    assert str(report.rejections[0]) == (
        "candidates.csv row 4, column candidate_date: empty, a date (YYYY-MM-DD) is required"
    )
    again = import_file(engine, "candidates", path, offer_codes=OFFERS)
    assert (again.inserted, again.already_present, again.rejected) == (0, 2, 1)
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Candidate)) == 2
