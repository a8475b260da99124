"""The Twilio SMS adapter with the real twilio SDK against the local Twilio server."""
# ruff: noqa: F811 - the fixtures imported from tests.provider_fakes are parameters here

from __future__ import annotations

import logging
import socket
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, parse_qsl, urlsplit

import pytest
from pydantic import ValidationError
from twilio.request_validator import RequestValidator

from channels.errors import ConfigurationError, OutcomeUnknown, RecipientRejected, TransientError
from channels.twilio_sms import TwilioSMS
from outreach.channel_setup import open_channel
from outreach.config import Settings
from outreach_dev.fakes.twilio_server import TwilioServer
from tests.provider_fakes import (  # noqa: F401 - fixtures
    SENDER,
    phone,
    sleeps,
    sms,
    sms_adapter,
    twilio_server,
)


def created_per_recipient(server: TwilioServer) -> dict[str, int]:
    return server.sent_to()


def posts(server: TwilioServer, to: str | None = None) -> list:
    return [r for r in server.requests if r.method == "POST" and (to is None or to in r.recipients)]


def test_sends_every_message_once_with_sender_callback_and_validity(twilio_server, sleeps):
    adapter = sms_adapter(twilio_server, sleeps)
    batch = [sms(n) for n in range(40)]
    outcome = adapter.send_batch(batch)
    adapter.close()

    assert not outcome.errors
    assert set(outcome.results) == {m.message_id for m in batch}
    assert {r.provider_message_id for r in outcome.results.values()} == set(twilio_server.messages)
    assert created_per_recipient(twilio_server) == {phone(n): 1 for n in range(40)}
    stored = next(m for m in twilio_server.messages.values() if m.to == phone(7))
    assert stored.body == batch[7].body
    assert stored.params["From"] == SENDER
    assert stored.params["ValidityPeriod"] == "3600"
    callback = urlsplit(stored.params["StatusCallback"])
    assert callback.path == "/webhooks/twilio/status"
    assert parse_qs(callback.query) == {"outreach_id": ["7"]}  # our id, nothing personal
    # every request conforms to Twilio's OpenAPI description (openapi-core, strict mode)
    assert all(not r.spec_errors for r in twilio_server.requests)
    assert sleeps.calls == []


def test_messaging_service_instead_of_from(twilio_server):
    adapter = sms_adapter(twilio_server, from_=None, messaging_service_sid="MG" + "1" * 32)
    outcome = adapter.send_batch([sms(1)])
    adapter.close()
    assert not outcome.errors
    stored = next(iter(twilio_server.messages.values()))
    assert stored.params["MessagingServiceSid"] == "MG" + "1" * 32 and "From" not in stored.params
    assert stored.status == "accepted"


def test_429_is_retried_after_the_retry_after_it_names(twilio_server, sleeps):
    twilio_server.set_faults(script=["429"], retry_after=2.5)
    adapter = sms_adapter(twilio_server, sleeps, concurrency=1)
    outcome = adapter.send_batch([sms(1)])
    adapter.close()
    assert list(outcome.results) == ["1"]
    assert [r.status for r in posts(twilio_server)] == [429, 201]
    assert len(sleeps.calls) == 1 and sleeps.calls[0] >= 2.5  # waited at least Retry-After
    assert created_per_recipient(twilio_server) == {phone(1): 1}


def test_503_is_retried_with_backoff(twilio_server, sleeps):
    twilio_server.set_faults(script=["503", "503"])
    adapter = sms_adapter(twilio_server, sleeps, concurrency=1)
    outcome = adapter.send_batch([sms(1)])
    adapter.close()
    assert list(outcome.results) == ["1"]
    assert [r.status for r in posts(twilio_server)] == [503, 503, 201]
    assert len(sleeps.calls) == 2 and all(s > 0 for s in sleeps.calls)


def test_transient_errors_stop_after_the_attempt_budget(twilio_server, sleeps):
    twilio_server.set_faults(script=["503"] * 10)
    adapter = sms_adapter(twilio_server, sleeps, concurrency=1, max_attempts=3)
    outcome = adapter.send_batch([sms(1)])
    adapter.close()
    assert isinstance(outcome.errors["1"], TransientError)
    assert outcome.errors["1"].code == "20503"
    assert len(posts(twilio_server)) == 3 and twilio_server.messages == {}


@pytest.mark.parametrize(
    ("code", "opted_out", "words"),
    [
        (21211, False, "not a valid phone number"),
        (21614, False, "not a valid mobile"),
        (21610, True, "unsubscribed"),
    ],
)
def test_permanent_errors_are_not_retried_and_carry_code_and_message(
    twilio_server, sleeps, code, opted_out, words
):
    twilio_server.set_faults(reject={phone(5): code})
    adapter = sms_adapter(twilio_server, sleeps)
    outcome = adapter.send_batch([sms(4), sms(5), sms(6)])
    adapter.close()
    error = outcome.errors["5"]
    assert isinstance(error, RecipientRejected)
    assert error.code == str(code) and error.provider == "twilio"
    assert error.opted_out is opted_out
    assert words in str(error)
    assert phone(5) not in str(error)  # Twilio's text names the number: masked
    assert len(posts(twilio_server, phone(5))) == 1  # never retried
    assert set(outcome.results) == {"4", "6"}
    assert sleeps.calls == []


def test_unknown_4xx_code_is_ambiguous_and_retried_within_budget(twilio_server, sleeps):
    twilio_server.set_faults(reject={phone(5): 21999})
    adapter = sms_adapter(twilio_server, sleeps, max_attempts=3)
    outcome = adapter.send_batch([sms(5)])
    adapter.close()
    assert isinstance(outcome.errors["5"], TransientError)
    assert len(posts(twilio_server, phone(5))) == 3


@pytest.mark.parametrize("fault", ["500", "slow", "reset"])
def test_request_that_may_have_been_processed_is_outcome_unknown_and_never_resent(
    twilio_server, sleeps, fault
):
    twilio_server.set_faults(script=[fault], slow_seconds=2.0)
    adapter = sms_adapter(twilio_server, sleeps, timeout=0.5, concurrency=1)
    started = datetime.now(UTC)
    outcome = adapter.send_batch([sms(1)])
    assert isinstance(outcome.errors["1"], OutcomeUnknown)
    assert len(posts(twilio_server)) == 1  # not retried
    assert sleeps.calls == []
    # the server did create it: reconciliation finds it by recipient, window and body
    found = adapter.reconcile([sms(1)], started)
    adapter.close()
    assert found["1"] is not None and found["1"].provider_message_id in twilio_server.messages


def test_reset_before_processing_is_unknown_and_reconciles_to_not_found(twilio_server, sleeps):
    twilio_server.set_faults(script=["drop"])
    adapter = sms_adapter(twilio_server, sleeps)
    started = datetime.now(UTC)
    outcome = adapter.send_batch([sms(1)])
    assert isinstance(outcome.errors["1"], OutcomeUnknown)
    assert adapter.reconcile([sms(1)], started) == {"1": None}
    adapter.close()


def test_reconcile_ignores_other_bodies_and_older_messages(twilio_server):
    adapter = sms_adapter(twilio_server)
    adapter.send_batch([sms(1, body="another text"), sms(2)])
    after = datetime.now(UTC)
    found = adapter.reconcile([sms(1), sms(2)], after.replace(year=after.year - 1))
    assert found["1"] is not None  # conservative: a message from our sender to that number counts
    assert found["2"].provider_message_id == next(
        m.sid for m in twilio_server.messages.values() if m.to == phone(2)
    )
    assert adapter.reconcile([sms(3)], after) == {"3": None}
    assert all(not r.spec_errors for r in twilio_server.requests)  # the listings conform too
    adapter.close()


def test_connection_refused_is_transient_and_retried(sleeps):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    adapter = TwilioSMS(
        "AC" + "0" * 32,
        "tok",
        from_=SENDER,
        api_url=f"http://127.0.0.1:{port}",
        sleep=sleeps,
        max_attempts=3,
        timeout=1,
    )
    outcome = adapter.send_batch([sms(1)])
    adapter.close()
    assert isinstance(outcome.errors["1"], TransientError)
    assert len(sleeps.calls) == 2  # three attempts


def test_wrong_credentials_stop_the_channel(twilio_server, sleeps):
    adapter = TwilioSMS(
        twilio_server.account_sid,
        "wrong",
        from_=SENDER,
        api_url=twilio_server.url,
        sleep=sleeps,
        concurrency=1,
    )
    outcome = adapter.send_batch([sms(n) for n in range(5)])
    adapter.close()
    assert (
        all(isinstance(e, ConfigurationError) for e in outcome.errors.values()) and len(outcome.errors) == 5
    )
    assert len(posts(twilio_server)) == 1  # it stopped after the first 401


def test_twenty_percent_transient_faults_end_accepted_exactly_once(twilio_server, sleeps):
    twilio_server.set_faults(rate=0.2, kinds=("429", "503"), retry_after=0.01, seed=7)
    adapter = sms_adapter(twilio_server, sleeps, max_attempts=10)
    batch = [sms(n) for n in range(300)]
    outcome = adapter.send_batch(batch)
    adapter.close()
    assert not outcome.errors and len(outcome.results) == 300
    faults = [r for r in posts(twilio_server) if r.fault]
    assert len(faults) > 30  # the faults really happened
    assert created_per_recipient(twilio_server) == {phone(n): 1 for n in range(300)}
    assert twilio_server.duplicates() == {}


def test_no_full_phone_number_reaches_the_logs(twilio_server, sleeps, caplog):
    caplog.set_level(logging.DEBUG)
    twilio_server.set_faults(
        reject={phone(2): 21211, phone(3): 21610}, script=["429", "500"], retry_after=0.01
    )
    adapter = sms_adapter(twilio_server, sleeps, concurrency=1)
    started = datetime.now(UTC)
    outcome = adapter.send_batch([sms(n) for n in range(1, 6)])
    adapter.reconcile([sms(1), sms(4)], started)
    adapter.close()
    assert caplog.records  # the SDK did log (requests and query strings with To=)
    text = caplog.text + " ".join(str(e) for e in outcome.errors.values())
    for n in range(1, 6):
        assert phone(n) not in text and phone(n)[1:] not in text


def test_status_callbacks_are_signed_like_twilio(sleeps):
    received: list[tuple[str, dict, str]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - stdlib name
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            received.append((self.path, dict(parse_qsl(body)), self.headers["X-Twilio-Signature"]))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    callback = f"http://127.0.0.1:{receiver.server_address[1]}/webhooks/twilio/status"
    with TwilioServer(callbacks=True, callback_delay=0.01, undeliverable={phone(2)}) as server:
        adapter = sms_adapter(server, sleeps, status_callback=callback)
        adapter.send_batch([sms(1), sms(2)])
        adapter.close()
        deadline = datetime.now(UTC).timestamp() + 5
        while len(received) < 4 and datetime.now(UTC).timestamp() < deadline:
            threading.Event().wait(0.02)
    receiver.shutdown()
    assert len(received) == 4
    validator = RequestValidator(server.auth_token)
    for path, params, signature in received:
        assert validator.validate(f"http://127.0.0.1:{receiver.server_address[1]}{path}", params, signature)
        assert not validator.validate(
            f"http://127.0.0.1:{receiver.server_address[1]}{path}", {**params, "X": "1"}, signature
        )
    finals = {
        p["To"]: (p["MessageStatus"], p.get("ErrorCode"))
        for _, p, _ in received
        if p["MessageStatus"] != "sent"
    }
    assert finals == {phone(1): ("delivered", None), phone(2): ("undelivered", "30003")}
    assert {parse_qs(urlsplit(path).query)["outreach_id"][0] for path, _, _ in received} == {"1", "2"}


def test_configuration_from_the_settings_tree(monkeypatch, tmp_path):
    """The environment is read once, into outreach.config; open_channel passes the adapter its part."""
    monkeypatch.chdir(tmp_path)  # no .env here
    for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "OUTREACH_TWILIO_FROM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC1")
    monkeypatch.setenv("OUTREACH_SMS_BACKEND", "twilio")
    with pytest.raises(ConfigurationError) as missing:
        open_channel(Settings(), "sms")
    text = str(missing.value)
    assert "TWILIO_AUTH_TOKEN" in text and "OUTREACH_TWILIO_FROM" in text and "TWILIO_ACCOUNT_SID" not in text
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "t")
    monkeypatch.setenv("OUTREACH_TWILIO_VALIDITY_PERIOD", "soon")
    with pytest.raises(ValidationError, match="validity_period"):
        Settings()
    monkeypatch.delenv("OUTREACH_TWILIO_VALIDITY_PERIOD")
    monkeypatch.setenv("OUTREACH_TWILIO_MESSAGING_SERVICE_SID", "MG1")
    monkeypatch.setenv("OUTREACH_TWILIO_STATUS_CALLBACK", "https://bank.example/webhooks/twilio/status")
    monkeypatch.setenv("OUTREACH_TWILIO_API_URL", "http://127.0.0.1:1")
    settings = Settings()
    assert repr(settings.twilio.auth_token) == "SecretStr('**********')"  # masked when printed
    adapter = open_channel(settings, "sms")
    assert isinstance(adapter, TwilioSMS)
    assert (adapter.messaging_service_sid, adapter.api_url) == ("MG1", "http://127.0.0.1:1")
    with pytest.raises(ConfigurationError, match="from_ or messaging_service_sid"):
        TwilioSMS("AC1", "t")
