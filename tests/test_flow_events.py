"""Business events: the core's signals from counts; the daily flow emits them to a real Prefect server."""

from __future__ import annotations

import csv
import time
from datetime import date

import pytest

from outreach.db import make_engine
from outreach.funnel import Funnel
from outreach.ops_events import channel_failures, day_completed, day_planned
from tests.factories import add_customers, customer
from tests.webhook_kit import add_message

DAY = date(2026, 11, 18)


def test_signals_carry_counts_and_resource_ids_only():
    funnel = Funnel(DAY, candidates=5, eligible=4, planned=3, sent=3, delivered=2)
    funnel.channels = {
        "sms": {"delivered": 2, "failed": 1, "undelivered": 1},
        "email": {"planned": 4},  # nothing attempted yet: no failure rate to report
    }
    assert day_planned(DAY, {"decided": 5, "messages_planned": 3, "ignored": 9}).payload == {
        "run_date": "2026-11-18",
        "decided": 5,
        "messages_planned": 3,
    }
    completed = day_completed(funnel)
    assert (completed.event, completed.resource_id) == ("outreach.day.completed", "outreach.day.2026-11-18")
    assert completed.payload["candidates"] == 5 and completed.payload["messages_sms"] == 4
    [sms] = channel_failures(funnel)
    assert (sms.event, sms.resource_id) == ("outreach.channel.failures", "outreach.channel.sms")
    assert sms.payload == {
        "run_date": "2026-11-18",
        "channel": "sms",
        "attempted": 4,
        "failed": 2,
        "failure_rate": 0.5,
    }
    assert sms.related == (("outreach.day.2026-11-18", "day"),)


def _read_events(flow_run: str, want: int, timeout: float = 30) -> list:
    """The outreach.* events of the day from the server's events API (the server persists them
    asynchronously, so poll until ``want`` arrived)."""
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventRelatedFilter

    related = EventRelatedFilter(id=[flow_run])
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            page = client.read_events(
                EventFilter(event=EventNameFilter(prefix=["outreach."]), related=related), limit=50
            )
            if len(page.events) >= want or time.monotonic() > deadline:
                return page.events
            time.sleep(0.5)


@pytest.mark.prefect
def test_daily_flow_emits_planned_failures_and_completed_events(
    prefect_server, sqlite_url, tmp_path, monkeypatch
):
    from flows.daily import daily_outreach
    from outreach.config import get_settings

    monkeypatch.setenv("OUTREACH_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("OUTREACH_OUTBOX_DIR", str(tmp_path / "outbox"))
    get_settings.cache_clear()
    engine = make_engine(sqlite_url)
    add_customers(engine, *[customer(f"EVCUST{i}") for i in range(6)], customer("EVFAIL1"))
    # an SMS a provider refused earlier that day: the run's failure rate must count it
    add_message(engine, "EVFAIL1", channel="sms", status="failed", run_date=DAY)
    drop = tmp_path / "candidates.csv"
    with drop.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["customer_id", "offer_code", "trigger", "trigger_ref", "score", "candidate_date"])
        for i in range(6):
            writer.writerow([f"EVCUST{i}", "SAVINGS_BOOST", "large_balance", f"t{i}", "0.5", DAY.isoformat()])
    try:
        state = daily_outreach(run_date=DAY.isoformat(), candidates_file=str(drop), return_state=True)
        result = state.result()
        # this run's events only: other tests of the session run the same day on the same server
        events = _read_events(f"prefect.flow-run.{state.state_details.flow_run_id}", want=4)
    finally:
        get_settings.cache_clear()
        engine.dispose()

    by_name = {}
    for event in events:
        by_name.setdefault(event.event, []).append(event)
    [planned] = by_name["outreach.day.planned"]
    assert planned.resource.id == "outreach.day.2026-11-18"
    assert planned.payload == {"run_date": "2026-11-18", "decided": 6, "messages_planned": 6}
    [completed] = by_name["outreach.day.completed"]
    assert completed.payload["candidates"] == 6 and completed.payload["sent"] == result["dispatch"]["sent"]
    failures = {event.resource.id: event for event in by_name["outreach.channel.failures"]}
    sms = failures["outreach.channel.sms"].payload
    assert (sms["attempted"], sms["failed"]) == (1, 1) and sms["failure_rate"] == 1.0
    email = failures["outreach.channel.email"].payload
    assert (email["attempted"], email["failed"], email["failure_rate"]) == (6, 0, 0.0)
    day_links = [r.id for r in failures["outreach.channel.sms"].related if r.role == "day"]
    assert day_links == ["outreach.day.2026-11-18"]
    text = " ".join(event.model_dump_json() for event in events)
    assert not [cid for cid in ("EVCUST", "EVFAIL1", "@example", "+316") if cid in text]


def test_a_run_that_left_work_reports_failure_rates_but_not_completed(sqlite_url, monkeypatch):
    from flows import events
    from outreach.config import get_settings

    monkeypatch.setenv("OUTREACH_DATABASE_URL", sqlite_url)
    get_settings.cache_clear()
    engine = make_engine(sqlite_url)
    add_customers(engine, customer("EVFAIL1"), customer("EVLEFT1"))
    add_message(engine, "EVFAIL1", channel="sms", status="failed", run_date=DAY)
    add_message(engine, "EVLEFT1", channel="email", status="planned", run_date=DAY)
    emitted = []
    monkeypatch.setattr(events, "emit", emitted.append)
    try:
        assert events.signal_day_end_task.fn(DAY, completed=False) == 1
        assert events.signal_day_end_task.fn(DAY, completed=True) == 2
    finally:
        get_settings.cache_clear()
        engine.dispose()
    assert [(s.event, s.resource_id) for s in emitted] == [
        ("outreach.channel.failures", "outreach.channel.sms"),
        ("outreach.channel.failures", "outreach.channel.sms"),
        ("outreach.day.completed", "outreach.day.2026-11-18"),
    ]
