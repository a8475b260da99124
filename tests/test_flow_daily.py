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


@pytest.mark.prefect
def test_daily_flow_runs_campaigns_honours_a_pause_and_publishes_artifacts(
    prefect_server, sqlite_url, tmp_path, monkeypatch
):
    from prefect.artifacts import Artifact
    from sqlalchemy import insert

    from flows.daily import daily_outreach
    from outreach.campaigns import state
    from outreach.config import get_settings
    from outreach.models import Holding

    folder = tmp_path / "campaigns"
    folder.mkdir()
    (folder / "flow-test.yaml").write_text(
        "name: flow-test\nowner: me\noffers: [SAVINGS_BOOST]\n"
        "window: {start: 2026-11-01, end: 2026-11-30}\n"
        "audience: {holds: [current_account]}\nchannels: [email]\nholdout_percent: 20\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("OUTREACH_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("OUTREACH_OUTBOX_DIR", str(tmp_path / "outbox"))
    monkeypatch.setenv("OUTREACH_CAMPAIGNS_DIR", str(folder))
    get_settings.cache_clear()
    engine = make_engine(sqlite_url)
    add_customers(engine, *[customer(f"K{i}") for i in range(40)])
    with session_scope(engine) as session:
        session.execute(
            insert(Holding), [{"customer_id": f"K{i}", "product": "current_account"} for i in range(40)]
        )
    empty = tmp_path / "none.csv"
    empty.write_text("customer_id,offer_code,trigger,trigger_ref,score,candidate_date\n", encoding="utf-8")
    try:
        from outreach.campaigns.daily import load_campaign_candidates

        load_campaign_candidates(engine, get_settings(), DAY)  # synced, so it can be paused before the run
        state.set_paused(engine, "flow-test", True)
        paused = daily_outreach(run_date=DAY.isoformat(), candidates_file=str(empty))
        state.set_paused(engine, "flow-test", False)
        resumed = daily_outreach(run_date=DAY.isoformat(), candidates_file=str(empty))
        funnel = Artifact.get("campaign-flow-test-funnel")
        results = Artifact.get("campaign-flow-test")
    finally:
        get_settings.cache_clear()
    treated = paused["plan"]["messages_planned"]
    assert paused["campaigns"] == {"flow-test": 40}
    assert 20 <= treated < 40 and paused["dispatch"]["held_paused"] == treated
    assert paused["dispatch"]["sent"] == 0
    assert resumed["dispatch"]["sent"] == treated and resumed["dispatch"]["held_paused"] == 0
    assert funnel is not None and "control_group" in str(funnel.data)
    assert results is not None and "Campaign report: flow-test" in str(results.data)
