"""Fixtures for the local provider servers and the adapters pointed at them (import into a test module)."""

from __future__ import annotations

import os
from datetime import date

import pytest

from channels.base import OutboundMessage
from channels.sendgrid_email import SendGridEmail
from channels.twilio_sms import TwilioSMS
from outreach_dev.fakes.sendgrid_server import SendGridServer
from outreach_dev.fakes.twilio_server import TwilioServer

for _name in ("TWILIO_EDGE", "TWILIO_REGION"):  # the SDK would rewrite the host
    os.environ.pop(_name, None)

SENDER = "+3197010000001"
DAY = date(2026, 11, 18)


class SleepRecorder:
    """Stands in for time.sleep inside the adapters' retry policy: records, waits only briefly."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def twilio_server():
    with TwilioServer(strict=True) as server:
        yield server


@pytest.fixture
def sendgrid_server():
    with SendGridServer(strict=True) as server:
        yield server


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


def sms_adapter(server: TwilioServer, sleep=None, **kwargs) -> TwilioSMS:
    options = {
        "from_": SENDER,
        "status_callback": "http://127.0.0.1:8000/webhooks/twilio/status",
        "validity_period": 3600,
        "timeout": 10.0,  # generous: a loaded CI machine took over 2 s to answer; fault tests set their own
        "max_attempts": 4,
        "concurrency": 4,
        "sleep": sleep,
        **kwargs,
    }
    return TwilioSMS(server.account_sid, server.auth_token, api_url=server.url, **options)


def email_adapter(server: SendGridServer, sleep=None, **kwargs) -> SendGridEmail:
    options = {"asm_group_id": 42, "categories": ["offers"], "timeout": 5.0, "sleep": sleep, **kwargs}
    return SendGridEmail(server.api_key, "aanbod@bank.example", api_url=server.url, **options)


def phone(n: int) -> str:
    return f"+316{n:08d}"


def sms(n: int, to: str | None = None, body: str | None = None) -> OutboundMessage:
    return OutboundMessage(
        message_id=str(n),
        channel="sms",
        customer_id=f"C{n}",
        offer_code="KIDS_SAVINGS",
        run_date=DAY,
        to=to or phone(n),
        body=body or f"Beste klant {n}, open een kinderspaarrekening. Stop? Sms STOP",
    )


def mail(
    n: int, to: str | None = None, html: bool = True, campaign: str | None = "kids-2026-11"
) -> OutboundMessage:
    return OutboundMessage(
        message_id=str(n),
        channel="email",
        customer_id=f"C{n}",
        offer_code="KIDS_SAVINGS",
        run_date=DAY,
        to=to or f"klant{n}@example.nl",
        subject=f"Kinderspaarrekening voor u, klant {n}",
        body=f"Beste klant {n},\n\nopen een kinderspaarrekening.",
        html=f"<p>Beste klant {n},</p><p>open een kinderspaarrekening.</p>" if html else None,
        campaign=campaign,
        unsubscribe_url=f"https://bank.example/u/{n}",
    )
