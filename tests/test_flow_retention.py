"""The ``content-retention`` flow on a Prefect test server deletes only content past retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select

from outreach.config import get_settings
from outreach.db import session_scope
from outreach.models import MessageContent
from tests.factories import add_customers, customer
from tests.webhook_kit import add_message

pytestmark = [pytest.mark.prefect, pytest.mark.slow]


def test_flow_purges_old_content_and_keeps_recent(prefect_server, sqlite_url, monkeypatch):
    from flows.retention import content_retention
    from outreach.db import make_engine

    engine = make_engine(sqlite_url)
    today = datetime.now(UTC).date()
    add_customers(engine, customer("C1"), customer("C2"))
    old = add_message(engine, "C1", run_date=today - timedelta(days=31))
    recent = add_message(engine, "C2", run_date=today - timedelta(days=29))
    with session_scope(engine) as session:
        session.execute(
            insert(MessageContent),
            [
                {
                    "message_id": mid,
                    "channel": "sms",
                    "language": "nl",
                    "template": "kids_savings",
                    "template_digest": "0" * 16,
                    "body": "Beste klant, ... Stop? Sms STOP",
                    "content_sha256": "0" * 64,
                    "rendered_at": datetime.now(UTC),
                }
                for mid in (old, recent)
            ],
        )
    monkeypatch.setenv("OUTREACH_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("OUTREACH_CONTENT_RETENTION_DAYS", "30")
    get_settings.cache_clear()
    try:
        result = content_retention()
    finally:
        get_settings.cache_clear()
    assert result == {"retention_days": 30, "purged": 1}
    with session_scope(engine) as session:
        assert list(session.scalars(select(MessageContent.message_id))) == [recent]
