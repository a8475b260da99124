"""Quiet hours are checked again at send time: a late or resumed run never sends into them."""

from datetime import UTC, date, datetime

from sqlalchemy import select

from channels import load_channel
from outreach import ledger
from outreach.config import Settings, load_offers
from outreach.db import session_scope
from outreach.dispatch import Dispatcher
from outreach.models import Message
from outreach.planning import decide_day
from tests.factories import add_candidates, add_customers, customer
from tests.fixture_files import OFFERS_FILE

DAY = date(2026, 11, 18)  # Wednesday
NOON = datetime(2026, 11, 18, 11, 0, tzinfo=UTC)
LATE = datetime(2026, 11, 18, 19, 30, tzinfo=UTC)  # 20:30 in Amsterdam, 14:30 in New York


def test_message_planned_in_window_but_sent_after_it_closed_waits_for_the_next_opening(engine, tmp_path):
    add_customers(
        engine,
        customer("NL", email_valid=False),
        customer("NY", email_valid=False, timezone="America/New_York"),
    )
    add_candidates(engine, DAY, ("NL", "TRAVEL_INSURANCE"), ("NY", "TRAVEL_INSURANCE"))
    decide_day(engine, DAY, load_offers(OFFERS_FILE), now=NOON)  # both planned for SMS at noon
    settings = Settings(database_url=str(engine.url), outbox_dir=tmp_path, send_window_check=True)
    dispatcher = Dispatcher(
        engine,
        settings,
        load_offers(OFFERS_FILE),
        load_channel("sms", "outbox", outbox_dir=tmp_path),
        "w1",
        clock=lambda: LATE,
    )
    with session_scope(engine) as session:
        ids = ledger.due_ids(session, DAY, "sms", LATE)
    report = dispatcher.send_ids(ids)
    assert (report.sent, report.deferred) == (1, 1)
    with session_scope(engine) as session:
        rows = {m.customer_id: m for m in session.scalars(select(Message))}
        assert rows["NY"].status == "sent"
        assert rows["NL"].status == "planned"
        assert rows["NL"].not_before.replace(tzinfo=UTC) == datetime(2026, 11, 19, 8, 0, tzinfo=UTC)
        # not due again before its window opens
        assert ledger.due_ids(session, DAY, "sms", LATE) == []
        assert ledger.due_ids(session, DAY, "sms", datetime(2026, 11, 19, 8, 0, tzinfo=UTC)) == [
            rows["NL"].id
        ]
