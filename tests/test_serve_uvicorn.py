"""The app under a real uvicorn on a loopback port: signed webhooks over HTTP, raw chunked oversize."""

from __future__ import annotations

import socket
from functools import partial

import httpx
import pytest

from outreach import consent
from outreach.db import make_engine, session_scope
from tests.factories import add_customers, customer
from tests.webhook_kit import SendGridSigner, make_settings, running_app, twilio_signature

CAP = 64 * 1024


@pytest.fixture
def server(sqlite_url):
    engine = make_engine(sqlite_url)
    add_customers(engine, customer("C1", mobile="+31612345678"))
    settings_for = partial(make_settings, sqlite_url, SendGridSigner(), max_request_bytes=CAP)
    with running_app(lambda base: settings_for(public_url=base)) as (base, port):
        yield base, port, engine
    engine.dispose()


def test_signed_stop_over_real_http_opts_out_and_forgery_is_refused(server):
    base, _, engine = server
    params = {"MessageSid": "SMreal0001", "From": "+31612345678", "To": "+3197010000000", "Body": "STOPPEN"}
    with httpx.Client(base_url=base, timeout=10) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        forged = client.post(
            "/webhooks/twilio/inbound",
            data=params,
            headers={
                "X-Twilio-Signature": twilio_signature(base + "/webhooks/twilio/inbound", params, "z" * 32)
            },
        )
        assert forged.status_code == 403
        signed = client.post(
            "/webhooks/twilio/inbound",
            data=params,
            headers={"X-Twilio-Signature": twilio_signature(base + "/webhooks/twilio/inbound", params)},
        )
        assert signed.status_code == 200 and signed.text.startswith("<?xml")
    with session_scope(engine) as session:
        assert consent.current(session, "C1").allows("sms") is False


def test_chunked_oversize_upload_gets_413_before_the_upload_ends(server):
    """No Content-Length, and the body never ends: the answer can only come from counting bytes."""
    _, port, _ = server
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(
            b"POST /webhooks/sendgrid/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"%x\r\n%s\r\n" % (16 * 1024, b" " * 16 * 1024)
        for _ in range(2 * CAP // (16 * 1024)):  # twice the cap, and no closing zero-length chunk
            conn.sendall(chunk)
        reply = conn.recv(4096)
    assert reply.split(b"\r\n", 1)[0] == b"HTTP/1.1 413 Request Entity Too Large"
