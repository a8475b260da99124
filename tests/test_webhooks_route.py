"""One webhook route: /webhooks/{provider}/{kind}, dispatching to the provider's parser, which
verifies and refuses the same way for every provider."""

import json

import pytest

from channels.errors import SignatureRejected, WebhookPayloadError
from channels.webhooks import SendGridWebhooks, TwilioWebhooks, WebhookRequest
from outreach.web.webhooks import HANDLERS, INSTANCES
from tests.webhook_kit import PUBLIC_URL, TWILIO_TOKEN, SendGridSigner, close_web, make_web, twilio_signature


@pytest.fixture
def web(db_url, engine):
    web = make_web(db_url, engine)
    yield web
    close_web(web)


def test_the_configured_urls_are_instances_of_the_one_route():
    assert {(p, k) for p, k, *_ in INSTANCES} == set(HANDLERS)


def test_unknown_providers_and_kinds_are_404_before_anything_is_read(web):
    assert web.client.post("/webhooks/mailgun/events", content=b"[]").status_code == 404
    assert web.client.post("/webhooks/twilio/events", content=b"x=1").status_code == 404


def test_both_parsers_refuse_a_bad_signature_by_raising():
    params = {"MessageSid": "SM1", "MessageStatus": "delivered"}
    body = b"MessageSid=SM1&MessageStatus=delivered"
    url = PUBLIC_URL + "/webhooks/twilio/status"
    twilio = TwilioWebhooks(TWILIO_TOKEN)
    with pytest.raises(SignatureRejected):
        twilio.parse("status", WebhookRequest(body, {"X-Twilio-Signature": "forged"}, url))
    good = {"X-Twilio-Signature": twilio_signature(url, params)}
    [event] = twilio.parse("status", WebhookRequest(body, good, url))
    assert (event.provider_message_id, str(event.type)) == ("SM1", "delivered")

    from channels.sendgrid_webhooks import Verifier

    signer = SendGridSigner()
    sendgrid = SendGridWebhooks(Verifier(signer.public_key))
    events = json.dumps([{"event": "delivered", "sg_event_id": "e1", "timestamp": 1}]).encode()
    with pytest.raises(SignatureRejected):
        sendgrid.parse("events", WebhookRequest(events, SendGridSigner().headers(events), url))
    with pytest.raises(WebhookPayloadError):
        sendgrid.parse("events", WebhookRequest(b"{}", signer.headers(b"{}"), url))
    assert len(sendgrid.parse("events", WebhookRequest(events, signer.headers(events), url))) == 1
