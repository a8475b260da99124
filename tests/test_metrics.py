"""`/metrics` over real HTTP: counts move with real signed webhooks, and no personal data leaks out."""

from __future__ import annotations

import json
from datetime import timedelta
from functools import partial

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from outreach import unsubscribe
from outreach.db import make_engine
from tests.clock import DAY
from tests.factories import add_customers, customer
from tests.webhook_kit import SendGridSigner, add_message, make_settings, running_app, twilio_signature

CUSTOMER = "CUST0042"
MOBILE = "+31612345678"
EMAIL = "anne.devries@example.nl"
SMS_SID = "SMmetrics0000000000000000000000001"


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of a scrape, keyed by name and labels; the client's own parser must accept it."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(scrape: dict, name: str, **labels: str) -> float:
    return scrape.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def served(sqlite_url, clock):
    engine = make_engine(sqlite_url)
    add_customers(engine, customer(CUSTOMER, mobile=MOBILE, email=EMAIL))
    sms = add_message(engine, CUSTOMER, "sms", "sent", provider_id=SMS_SID, run_date=DAY)
    email = add_message(engine, CUSTOMER, "email", "sent", provider_id="sg-1", run_date=DAY)
    add_message(engine, CUSTOMER, "letter", "sent", run_date=DAY - timedelta(days=30))  # outside the window
    signer = SendGridSigner()
    settings = {}

    def settings_for(base: str):
        settings["value"] = make_settings(sqlite_url, signer, public_url=base)
        return settings["value"]

    with running_app(settings_for) as (base, _), httpx.Client(base_url=base, timeout=10) as client:
        yield client, base, signer, settings["value"], {"sms": sms, "email": email}
    engine.dispose()


def scrape(client: httpx.Client) -> tuple[str, dict]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text, samples(response.text)


def post_twilio(client, base, path, params, token=None):
    signature = twilio_signature(base + path, params, *([token] if token else []))
    return client.post(path, data=params, headers={"X-Twilio-Signature": signature})


def test_scrape_counts_webhooks_routes_and_ledger_without_personal_data(served):
    client, base, signer, settings, ids = served
    _, before = scrape(client)
    assert value(before, "outreach_ledger_messages", channel="sms", status="sent") == 1
    assert value(before, "outreach_ledger_messages", channel="letter", status="sent") == 0  # 30 days ago
    assert value(before, "outreach_ledger_up") == 1

    status = {"MessageSid": SMS_SID, "MessageStatus": "delivered", "To": MOBILE, "From": "+3197010000000"}
    path = "/webhooks/twilio/status"
    assert post_twilio(client, base, path, status).status_code == 204
    assert post_twilio(client, base, path, status).status_code == 204  # Twilio retried: a duplicate
    assert post_twilio(client, base, path, status, token="f" * 32).status_code == 403
    no_status = {"MessageSid": SMS_SID, "To": MOBILE}
    assert post_twilio(client, base, path, no_status).status_code == 400

    events = [
        {
            "email": EMAIL,
            "event": kind,
            "timestamp": 1_795_000_000 + n,
            "sg_event_id": f"ev-{n}",
            "sg_message_id": "sg-1.filter",
            "outreach_id": str(ids["email"]),
        }
        for n, kind in enumerate(["processed", "delivered"])
    ]
    body = json.dumps(events).encode()
    assert (
        client.post("/webhooks/sendgrid/events", content=body, headers=signer.headers(body)).status_code
        == 204
    )
    forged = SendGridSigner().headers(body)
    assert client.post("/webhooks/sendgrid/events", content=body, headers=forged).status_code == 403
    garbage = b"{not json"
    assert (
        client.post("/webhooks/sendgrid/events", content=garbage, headers=signer.headers(garbage)).status_code
        == 400
    )

    token_url = unsubscribe.unsubscribe_url(settings, CUSTOMER, "email")
    token = token_url.rsplit("/", 1)[1]
    assert client.get(f"/unsubscribe/{token}").status_code == 200
    assert client.get(f"/no/such/{CUSTOMER}").status_code == 404

    text, after = scrape(client)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    twilio = {"provider": "twilio"}
    assert moved("outreach_webhook_events_total", **twilio, result="accepted") == 1
    assert moved("outreach_webhook_events_total", **twilio, result="duplicate") == 1
    assert moved("outreach_webhook_events_total", **twilio, result="rejected-signature") == 1
    assert moved("outreach_webhook_events_total", **twilio, result="bad-payload") == 1
    sendgrid = {"provider": "sendgrid"}
    assert moved("outreach_webhook_events_total", **sendgrid, result="accepted") == 2
    assert moved("outreach_webhook_events_total", **sendgrid, result="rejected-signature") == 1
    assert moved("outreach_webhook_events_total", **sendgrid, result="bad-payload") == 1

    route = {"method": "POST", "route": path}
    assert moved("outreach_http_requests_total", **route, status="204") == 2
    assert moved("outreach_http_requests_total", **route, status="403") == 1
    assert moved("outreach_http_request_duration_seconds_count", **route) == 4
    page = {"method": "GET", "route": "/unsubscribe/{token}", "status": "200"}
    assert moved("outreach_http_requests_total", **page) == 1
    assert moved("outreach_http_requests_total", method="GET", route="<unmatched>", status="404") == 1

    assert value(after, "outreach_ledger_messages", channel="sms", status="delivered") == 1
    assert value(after, "outreach_ledger_messages", channel="sms", status="sent") == 0
    assert value(after, "outreach_ledger_messages", channel="email", status="delivered") == 1

    for personal in (CUSTOMER, MOBILE, MOBILE.lstrip("+"), EMAIL, "example.nl", token, SMS_SID, "sg-1"):
        assert personal not in text, personal


def test_scrape_answers_when_the_ledger_is_unreadable(tmp_path, clock):
    missing = f"sqlite+pysqlite:///{tmp_path / 'not-migrated.db'}"
    settings_for = partial(make_settings, missing, SendGridSigner())
    served = running_app(lambda base: settings_for(public_url=base))
    with served as (base, _), httpx.Client(base_url=base, timeout=10) as client:
        _, scraped = scrape(client)
    assert value(scraped, "outreach_ledger_up") == 0
    assert not [key for key in scraped if key[0] == "outreach_ledger_messages"]
