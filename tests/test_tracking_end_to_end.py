"""End to end: a day sent through the real SDKs to the local Twilio and SendGrid servers, which post
their signed callbacks back to our service under uvicorn. Every message ends delivered or with a
recorded failure, ``outreach status`` shows it, and the mail's one-click unsubscribe link works."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from outreach import consent, tracking
from outreach.config import SendGridSettings, Settings, TwilioSettings, load_offers
from outreach.db import session_scope
from outreach.delivery_status import lifecycle
from outreach.dispatch import Dispatcher
from outreach.models import Customer, Message
from outreach.planning import decide_day
from outreach.sending import send_due
from outreach_dev.fakes.sendgrid_server import SendGridServer
from outreach_dev.fakes.twilio_server import TwilioServer
from tests.factories import add_candidates, add_customers, customer
from tests.fixture_files import OFFERS_FILE
from tests.provider_fakes import email_adapter, sms_adapter
from tests.webhook_kit import UNSUBSCRIBE_SECRET, running_app

REPO = Path(__file__).resolve().parent.parent
DAY = date(2026, 11, 18)
NOON = datetime(2026, 11, 18, 11, 0, tzinfo=UTC)
FINAL = {"delivered", "undelivered", "failed", "bounced"}
SMS_CUSTOMERS = [f"S{i}" for i in range(5)]
MAIL_CUSTOMERS = [f"M{i}" for i in range(5)]


def mobile(customer_id: str) -> str:
    return f"+3162000000{customer_id[1:]}"


def address(customer_id: str) -> str:
    return f"{customer_id.lower()}@example.nl"


def ledger(engine) -> dict[str, Message]:
    with session_scope(engine) as session:
        return {m.customer_id: m for m in session.scalars(select(Message))}


@pytest.mark.slow
def test_a_day_against_the_provider_servers_ends_delivered_or_failed(db_url, engine, tmp_path):
    add_customers(
        engine, *[customer(c, mobile=mobile(c), email=address(c)) for c in SMS_CUSTOMERS + MAIL_CUSTOMERS]
    )
    add_candidates(engine, DAY, *[(c, "TRAVEL_INSURANCE") for c in SMS_CUSTOMERS])  # sms first
    add_candidates(engine, DAY, *[(c, "KIDS_SAVINGS") for c in MAIL_CUSTOMERS])  # email first
    offers = load_offers(OFFERS_FILE)
    decide_day(engine, DAY, offers, now=NOON)

    twilio = TwilioServer(strict=True, callbacks=True, undeliverable={mobile("S3")})
    sendgrid = SendGridServer(strict=True, bounces={address("M2")})

    def settings_for(base: str) -> Settings:
        return Settings(
            database_url=db_url,
            public_url=base,
            twilio=TwilioSettings(auth_token=twilio.auth_token),
            sendgrid=SendGridSettings(webhook_public_key=sendgrid.public_key),
            unsubscribe_secret=UNSUBSCRIBE_SECRET,
            outbox_dir=tmp_path / "outbox",
        )

    with running_app(settings_for) as (base, _), twilio, sendgrid:
        sendgrid.event_webhook_url = f"{base}/webhooks/sendgrid/events"
        settings = settings_for(base)
        channels = {
            "sms": sms_adapter(twilio, status_callback=f"{base}/webhooks/twilio/status"),
            "email": email_adapter(sendgrid),
        }
        try:
            for kind, adapter in channels.items():
                report, _ = send_due(
                    Dispatcher(engine, settings, offers, adapter, f"e2e-{kind}"), DAY, at=NOON
                )
                assert report.sent == 5, (kind, report)
        finally:
            for adapter in channels.values():
                adapter.close()
        deadline = time.monotonic() + 30  # a bound for a hung test, not a measured figure
        while time.monotonic() < deadline and not all(m.status in FINAL for m in ledger(engine).values()):
            time.sleep(0.1)

        rows = ledger(engine)
        assert {c: rows[c].status for c in SMS_CUSTOMERS} == {
            **{c: "delivered" for c in SMS_CUSTOMERS},
            "S3": "undelivered",
        }
        assert rows["S3"].last_error_code == "30003"
        assert {c: rows[c].status for c in MAIL_CUSTOMERS} == {
            **{c: "delivered" for c in MAIL_CUSTOMERS},
            "M2": "bounced",
        }
        # every signed callback was accepted, nothing refused or lost
        outcomes = [outcome for _, outcome in twilio.callback_results + sendgrid.callback_results]
        assert len(outcomes) == 2 * 5 + 1 and set(outcomes) == {204}
        with session_scope(engine) as session:
            assert session.get(Customer, "M2").email_valid is False

        # the unsubscribe link the mail carried works with one click (RFC 8058)
        mail = next(m for m in sendgrid.mails if m.to_email == address("M4"))
        link = mail.headers["List-Unsubscribe"].strip("<>")
        # the customer id is not in the URL in clear: one opaque token, no id segment or parameter
        # (a substring test would fail by chance: random token text can contain "M4")
        assert link.startswith(f"{base}/unsubscribe/") and "?" not in link
        assert "M4" not in link.split("/") and len(link.rsplit("/", 1)[1]) > 40
        assert httpx.post(link, data={"List-Unsubscribe": "One-Click"}, timeout=10).status_code == 200
        with session_scope(engine) as session:
            assert consent.current(session, "M4").allows("email") is False
            assert consent.current(session, "M3").allows("email") is True

    report = lifecycle(engine, DAY)
    table = {(r.channel, r.offer_code): r for r in report.rows}
    sms, mail_row = table[("sms", "TRAVEL_INSURANCE")], table[("email", "KIDS_SAVINGS")]
    assert (sms.sent, sms.delivered, sms.failed, sms.top_failure_reasons) == (5, 4, 1, "30003 ×1")
    assert (mail_row.sent, mail_row.delivered, mail_row.bounced, mail_row.opted_out_after_contact) == (
        5,
        4,
        1,
        1,
    )
    with session_scope(engine) as session:
        assert tracking.unmatched_events(session) == []  # every callback found its message
