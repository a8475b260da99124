"""The real Prefect flow on a real (test-harness) Prefect server, against SQLite."""

import csv
from datetime import date

import pytest
from sqlalchemy import func, select

from outreach.db import make_engine, session_scope
from outreach.models import Message
from tests.factories import add_customers, customer

DAY = date(2026, 11, 18)


@pytest.mark.prefect
def test_daily_flow_runs_end_to_end_and_twice_sends_nothing_twice(
    prefect_server, sqlite_url, tmp_path, monkeypatch
):
    from flows.daily import daily_outreach
    from outreach.config import get_settings

    outbox = tmp_path / "outbox"
    monkeypatch.setenv("OUTREACH_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("OUTREACH_OUTBOX_DIR", str(outbox))
    get_settings.cache_clear()
    engine = make_engine(sqlite_url)
    add_customers(engine, *[customer(f"C{i}") for i in range(30)])
    drop = tmp_path / "candidates.csv"
    with drop.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["customer_id", "offer_code", "trigger", "trigger_ref", "score", "candidate_date"])
        for i in range(30):
            writer.writerow([f"C{i}", "SAVINGS_BOOST", "large_balance", f"tx{i}", "0.5", DAY.isoformat()])
    try:
        first = daily_outreach(run_date=DAY.isoformat(), candidates_file=str(drop))
        second = daily_outreach(run_date=DAY.isoformat(), candidates_file=str(drop))
    finally:
        get_settings.cache_clear()
    assert first["dispatch"]["sent"] == 30
    assert second["dispatch"]["claimed"] == 0 and second["dispatch"]["sent"] == 0
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 30
    assert len(list((outbox / DAY.isoformat() / "email").glob("*.eml"))) == 30
