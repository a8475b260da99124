"""Structured logs: one JSON object per line, personal data masked, also in the webhook paths."""

from __future__ import annotations

import json
import logging

from outreach.db import make_engine
from outreach.logs import JsonFormatter
from tests.factories import add_customers, customer
from tests.webhook_kit import close_web, make_web

PHONE = "+31612345678"
EMAIL = "anne.de.vries@example.nl"


def test_formatter_masks_message_and_fields():
    record = logging.LogRecord("outreach.test", logging.INFO, __file__, 1, "reply from %s", (PHONE,), None)
    record.recipient = EMAIL
    record.count = 3
    line = JsonFormatter().format(record)
    doc = json.loads(line)
    assert doc["level"] == "info" and doc["logger"] == "outreach.test" and doc["count"] == 3
    assert PHONE not in line and EMAIL not in line
    assert doc["msg"].startswith("reply from +316") and doc["recipient"].endswith("@example.nl")


def test_webhook_logs_carry_no_personal_data(sqlite_url, caplog):
    engine = make_engine(sqlite_url)
    add_customers(engine, customer("C1", mobile=PHONE, email=EMAIL))
    web = make_web(sqlite_url, engine)
    try:
        with caplog.at_level(logging.DEBUG, logger="outreach"):
            web.twilio(
                "/webhooks/twilio/inbound",
                {"MessageSid": "SM1", "From": PHONE, "To": "+3197010000000", "Body": "STOP"},
            )
            web.twilio(
                "/webhooks/twilio/inbound", {"MessageSid": "SM2", "From": "+31600000001", "Body": "hoi"}
            )
            web.sendgrid([{"event": "bounce", "email": EMAIL, "timestamp": 1, "sg_event_id": "e1"}])
            web.twilio("/webhooks/twilio/status", {"MessageSid": "SM9", "MessageStatus": "sent", "To": PHONE})
    finally:
        close_web(web)
        engine.dispose()
    lines = [JsonFormatter().format(record) for record in caplog.records]
    assert len(lines) >= 4
    assert any("+316" in line for line in lines)  # the numbers are there, masked
    for line in lines:
        json.loads(line)
        assert PHONE not in line and EMAIL not in line and "+31600000001" not in line
