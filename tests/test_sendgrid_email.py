"""The SendGrid email adapter with the real sendgrid SDK against the local SendGrid server."""
# ruff: noqa: F811 - the fixtures imported from tests.provider_fakes are parameters here

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from pydantic import ValidationError
from sendgrid.helpers.eventwebhook import EventWebhook, EventWebhookHeader

from channels.errors import ConfigurationError, OutcomeUnknown, RecipientRejected, TransientError
from channels.sendgrid_email import SUBSTITUTION_LIMIT, SendGridEmail
from outreach.channel_setup import open_channel
from outreach.config import Settings
from outreach_dev.fakes.sendgrid_server import SendGridServer
from tests.provider_fakes import email_adapter, mail, sendgrid_server, sleeps  # noqa: F401 - fixtures


def sends(server: SendGridServer) -> list:
    return [r for r in server.requests if r.method == "POST"]


def test_batches_of_at_most_1000_personalizations_each_with_its_own_content(sendgrid_server, sleeps):
    adapter = email_adapter(sendgrid_server, sleeps)
    batch = [mail(n) for n in range(2300)]
    outcome = adapter.send_batch(batch)
    adapter.close()

    assert not outcome.errors and len(outcome.results) == 2300
    sizes = sorted(len(r.recipients) for r in sends(sendgrid_server))
    assert sizes == [300, 1000, 1000]
    assert sendgrid_server.accepted_ids() == {str(n): 1 for n in range(2300)}
    by_id = {m.outreach_id: m for m in sendgrid_server.mails}
    got = by_id["1234"]
    assert got.to_email == "klant1234@example.nl"
    assert got.subject == "Kinderspaarrekening voor u, klant 1234"
    assert got.text == batch[1234].body and got.html == batch[1234].html  # substitutions applied
    assert got.custom_args == {"outreach_id": "1234", "campaign": "kids-2026-11"}  # nothing personal
    assert got.headers == {
        "List-Unsubscribe": "<https://bank.example/u/1234>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    assert (got.categories, got.asm_group_id, got.from_email) == (["offers"], 42, "aanbod@bank.example")
    # the X-Message-Id of the request is stored for each of its mails
    assert outcome.results["1234"].provider_message_id == got.x_message_id
    assert all(not r.spec_errors for r in sendgrid_server.requests)  # openapi-core, strict mode


def test_chunks_keep_an_address_once_per_request_and_content_types_apart(sendgrid_server):
    adapter = email_adapter(sendgrid_server)
    batch = [mail(1), mail(2, to="klant1@example.nl"), mail(3, html=False), mail(4)]
    oversized = mail(5)
    oversized = type(oversized)(
        **{**{f: getattr(oversized, f) for f in oversized.__slots__}, "body": "x" * (SUBSTITUTION_LIMIT + 10)}
    )
    outcome = adapter.send_batch([*batch, oversized])
    adapter.close()
    assert not outcome.errors and len(outcome.results) == 5
    for request in sends(sendgrid_server):
        assert len(request.recipients) == len({r.lower() for r in request.recipients})
    alone = next(m for m in sendgrid_server.mails if m.outreach_id == "5")
    assert alone.text == "x" * (SUBSTITUTION_LIMIT + 10)
    assert next(m for m in sendgrid_server.mails if m.outreach_id == "3").html is None


def test_an_invalid_address_is_rejected_alone_and_the_rest_sent(sendgrid_server, sleeps):
    sendgrid_server.set_faults(reject={"klant7@example.nl": "invalid"})
    adapter = email_adapter(sendgrid_server, sleeps)
    outcome = adapter.send_batch([mail(n) for n in range(10)] + [mail(99, to="not-an-address")])
    adapter.close()
    assert set(outcome.errors) == {"7", "99"}
    for error in outcome.errors.values():
        assert isinstance(error, RecipientRejected) and error.code == "400"
        assert "Does not contain a valid address" in str(error)
        assert "klant7@example.nl" not in str(error)
    assert set(outcome.results) == {str(n) for n in range(10) if n != 7}
    assert [r.status for r in sends(sendgrid_server)][-1] == 202
    assert sendgrid_server.accepted_ids() == {str(n): 1 for n in range(10) if n != 7}
    assert sleeps.calls == []  # 400s are never retried as such


def test_429_honours_retry_after_and_503_is_retried(sendgrid_server, sleeps):
    sendgrid_server.set_faults(script=["429", "503"], retry_after=3)
    adapter = email_adapter(sendgrid_server, sleeps)
    outcome = adapter.send_batch([mail(n) for n in range(20)])
    adapter.close()
    assert len(outcome.results) == 20
    assert [r.status for r in sends(sendgrid_server)] == [429, 503, 202]
    assert sleeps.calls[0] >= 3 and len(sleeps.calls) == 2
    assert sendgrid_server.accepted_ids() == {str(n): 1 for n in range(20)}


@pytest.mark.parametrize("fault", ["500", "slow", "reset"])
def test_a_request_that_may_have_been_accepted_is_unknown_then_reconciled(sendgrid_server, sleeps, fault):
    sendgrid_server.set_faults(script=[fault], slow_seconds=2.0)
    # only "slow" is about the client's timeout; a short one elsewhere failed on a loaded machine
    adapter = email_adapter(sendgrid_server, sleeps, timeout=0.5 if fault == "slow" else 10.0)
    started = datetime.now(UTC)
    batch = [mail(n) for n in range(30)]
    outcome = adapter.send_batch(batch)
    assert len(outcome.errors) == 30 and all(isinstance(e, OutcomeUnknown) for e in outcome.errors.values())
    assert len(sends(sendgrid_server)) == 1 and sleeps.calls == []
    found = adapter.reconcile(batch + [mail(500)], started)
    adapter.close()
    x_message_id = sendgrid_server.mails[0].x_message_id
    assert {k: v.provider_message_id for k, v in found.items() if v} == {
        str(n): x_message_id for n in range(30)
    }
    assert found["500"] is None


def test_reconcile_asks_one_by_one_when_an_address_is_shared(sendgrid_server):
    adapter = email_adapter(sendgrid_server)
    adapter.send_batch([mail(1), mail(2, to="klant1@example.nl")])
    found = adapter.reconcile([mail(1), mail(2, to="klant1@example.nl"), mail(3)], datetime.now(UTC))
    adapter.close()
    assert found["1"] is not None and found["2"] is not None and found["3"] is None
    queries = [r.query for r in sendgrid_server.requests if r.method == "GET"]
    assert len(queries) == 3  # one OR-query, then one per shared address


def test_twenty_percent_transient_faults_end_accepted_exactly_once(sendgrid_server, sleeps):
    sendgrid_server.set_faults(rate=0.2, kinds=("429", "503"), retry_after=0.01, seed=3)
    adapter = email_adapter(sendgrid_server, sleeps, chunk_size=20, max_attempts=10, concurrency=4)
    outcome = adapter.send_batch([mail(n) for n in range(1000)])
    adapter.close()
    assert not outcome.errors and len(outcome.results) == 1000
    assert sum(1 for r in sends(sendgrid_server) if r.fault) > 5
    assert sendgrid_server.accepted_ids() == {str(n): 1 for n in range(1000)}


def test_wrong_key_is_a_configuration_error(sendgrid_server, sleeps):
    adapter = SendGridEmail("SG.wrong", "aanbod@bank.example", api_url=sendgrid_server.url, sleep=sleeps)
    outcome = adapter.send_batch([mail(1), mail(2)])
    adapter.close()
    assert (
        all(isinstance(e, ConfigurationError) for e in outcome.errors.values()) and len(outcome.errors) == 2
    )


def test_connection_refused_is_transient(sleeps):
    adapter = SendGridEmail(
        "SG.k", "aanbod@bank.example", api_url="http://127.0.0.1:9", sleep=sleeps, max_attempts=2
    )
    outcome = adapter.send_batch([mail(1)])
    adapter.close()
    assert isinstance(outcome.errors["1"], TransientError) and len(sleeps.calls) == 1


def test_no_full_email_address_reaches_the_logs(sendgrid_server, sleeps, caplog):
    caplog.set_level(logging.DEBUG)
    sendgrid_server.set_faults(reject={"klant3@example.nl": "x"}, script=["500"])
    adapter = email_adapter(sendgrid_server, sleeps, chunk_size=2)
    outcome = adapter.send_batch([mail(n) for n in range(1, 6)])
    adapter.reconcile([mail(1)], datetime.now(UTC))
    adapter.close()
    assert any(r.name == "python_http_client.client" for r in caplog.records)  # the SDK logged payloads
    text = caplog.text + " ".join(str(e) for e in outcome.errors.values())
    for n in range(1, 6):
        assert f"klant{n}@example.nl" not in text


def test_event_webhook_posts_are_signed_like_sendgrid():
    received: list[tuple[bytes, dict]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - stdlib name
            received.append((self.rfile.read(int(self.headers["Content-Length"])), dict(self.headers)))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{receiver.server_address[1]}/webhooks/sendgrid/events"
    with SendGridServer(event_webhook_url=url, event_delay=0.01, bounces={"klant2@example.nl"}) as server:
        adapter = email_adapter(server)
        adapter.send_batch([mail(1), mail(2)])
        adapter.close()
        deadline = time.monotonic() + 5
        while not received and time.monotonic() < deadline:
            time.sleep(0.02)
        key = server.public_key
    receiver.shutdown()
    body, headers = received[0]
    verifier = EventWebhook(key)
    signature = headers[EventWebhookHeader.SIGNATURE]
    timestamp = headers[EventWebhookHeader.TIMESTAMP]
    assert verifier.verify_signature(body.decode(), signature, timestamp)
    assert not verifier.verify_signature(body.decode().replace("delivered", "dropped"), signature, timestamp)
    events = json.loads(body)
    finals = {e["outreach_id"]: e["event"] for e in events if e["event"] != "processed"}
    assert finals == {"1": "delivered", "2": "bounce"}
    assert all(e["sg_message_id"].startswith(e["smtp-id"][1:23]) for e in events)


def test_configuration_from_the_settings_tree(monkeypatch, tmp_path):
    """The environment is read once, into outreach.config; open_channel passes the adapter its part."""
    monkeypatch.chdir(tmp_path)  # no .env here
    for name in ("SENDGRID_API_KEY", "OUTREACH_EMAIL_FROM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.x")
    monkeypatch.setenv("OUTREACH_EMAIL_BACKEND", "sendgrid")
    with pytest.raises(ConfigurationError) as missing:
        open_channel(Settings(), "email")
    assert "OUTREACH_EMAIL_FROM" in str(missing.value) and "SENDGRID_API_KEY" not in str(missing.value)
    monkeypatch.setenv("OUTREACH_EMAIL_FROM", "a@b.nl")
    monkeypatch.setenv("OUTREACH_SENDGRID_ASM_GROUP", "marketing")
    with pytest.raises(ValidationError, match="asm_group"):
        Settings()
    monkeypatch.setenv("OUTREACH_SENDGRID_ASM_GROUP", "12")
    monkeypatch.setenv("OUTREACH_SENDGRID_API_URL", "http://127.0.0.1:1/")
    adapter = open_channel(Settings(), "email")
    assert isinstance(adapter, SendGridEmail)
    assert (adapter.asm_group_id, adapter.api_url, adapter.categories) == (
        12,
        "http://127.0.0.1:1",
        ["outreach"],
    )
