"""The ``delivery-reconcile`` flow for real on a Prefect test server: it settles, flags and
publishes its tables as artifacts (counts only, no personal data)."""

from __future__ import annotations

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
