"""The ``delivery-reconcile`` flow for real on a Prefect test server: it settles, flags and
publishes its tables as artifacts (counts only, no personal data)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from outreach.config import get_settings
from tests.factories import add_customers, customer
from tests.webhook_kit import add_message, message

pytestmark = [pytest.mark.prefect, pytest.mark.slow]


def test_flow_flags_what_nobody_can_settle_and_publishes_artifacts(
    prefect_server, sqlite_url, tmp_path, monkeypatch
):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.reconcile import delivery_reconcile
    from outreach.db import make_engine

    engine = make_engine(sqlite_url)
    today = datetime.now(UTC).date()
    three_hours_ago = datetime.now(UTC) - timedelta(hours=3)
    add_customers(engine, customer("C1"), customer("C2"))
    silent = add_message(engine, "C1", provider_id="SMx", sent_at=three_hours_ago, run_date=today)
    unknown = add_message(engine, "C2", status="unknown", sent_at=three_hours_ago, run_date=today)
    monkeypatch.setenv("OUTREACH_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("OUTREACH_OUTBOX_DIR", str(tmp_path / "outbox"))
    get_settings.cache_clear()
    try:
        result = delivery_reconcile(older_than_minutes=60, flag_after_hours=1, status_date=today)
    finally:
        get_settings.cache_clear()
    assert result == {"stuck": 2, "moved": 0, "status_fetched": 0, "flagged": 2}
    assert message(engine, silent).last_error_code == "stuck" and message(engine, unknown).status == "unknown"
    with get_client(sync_client=True) as client:
        artifacts = {
            key: client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
            for key in ("delivery-reconcile", "delivery-status")
        }
    status_table = str(artifacts["delivery-status"][0].data)
    assert "KIDS_SAVINGS" in status_table and "C1" not in status_table and "C2" not in status_table
    reconcile_table = str(artifacts["delivery-reconcile"][0].data)
    assert "OutboxSMS offers no reconcile()" in reconcile_table  # the unknown one
    assert "OutboxSMS offers no fetch_status()" in reconcile_table  # the silent sent one
    assert "status_fetched" in reconcile_table and "finalised" in reconcile_table
    engine.dispose()


def test_flow_settles_sms_whose_callbacks_were_all_lost_through_the_real_sdk(
    prefect_server, sqlite_url, tmp_path, monkeypatch
):
    """The deployed path: the flow builds the Twilio adapter from the environment, fetches each
    stuck message's status from the (fake) provider and moves the ledger; nothing is flagged."""
    from dataclasses import replace

    from flows.reconcile import delivery_reconcile
    from outreach.db import make_engine, session_scope
    from outreach.models import Message
    from outreach_dev.fakes.twilio_server import TwilioServer
    from tests.provider_fakes import SENDER, phone, sms, sms_adapter

    engine = make_engine(sqlite_url)
    today = datetime.now(UTC).date()
    add_customers(engine, *[customer(f"C{n}", mobile=phone(n)) for n in (1, 2)])
    ids = {n: add_message(engine, f"C{n}", provider_id="pending", run_date=today) for n in (1, 2)}
    with TwilioServer(strict=True, callbacks=True, callback_delay=0.01, undeliverable={phone(2)}) as twilio:
        twilio.set_faults(lost_callbacks=1.0)  # Twilio finishes the messages; we never hear of it
        adapter = sms_adapter(twilio)
        sent = adapter.send_batch([replace(sms(n), message_id=str(mid)) for n, mid in ids.items()])
        adapter.close()
        with session_scope(engine) as session:
            for mid, result in sent.results.items():
                session.get(Message, int(mid)).provider_id = result.provider_message_id
                session.get(Message, int(mid)).sent_at = datetime.now(UTC) - timedelta(hours=3)
        deadline = datetime.now(UTC) + timedelta(seconds=5)
        while not all(m.current()[2] for m in twilio.messages.values()):
            assert datetime.now(UTC) < deadline, "the fake never finished its messages"
            time.sleep(0.01)
        for name, value in {
            "OUTREACH_DATABASE_URL": sqlite_url,
            "OUTREACH_OUTBOX_DIR": str(tmp_path / "outbox"),
            "OUTREACH_SMS_BACKEND": "twilio",
            "TWILIO_ACCOUNT_SID": twilio.account_sid,
            "TWILIO_AUTH_TOKEN": twilio.auth_token,
            "OUTREACH_TWILIO_FROM": SENDER,
            "OUTREACH_TWILIO_API_URL": twilio.url,
        }.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        try:
            result = delivery_reconcile(older_than_minutes=60, flag_after_hours=24, status_date=today)
        finally:
            get_settings.cache_clear()
        fetched = [r for r in twilio.requests if r.method == "GET"]
    assert result["status_fetched"] == 2 and result["flagged"] == 0
    assert message(engine, ids[1]).status == "delivered"
    assert (message(engine, ids[2]).status, message(engine, ids[2]).last_error_code) == (
        "undelivered",
        "30003",
    )
    assert len(fetched) == 2 and all(r.status == 200 for r in fetched)
    engine.dispose()
