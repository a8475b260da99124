"""Request bodies are capped while they are read: a declared or a streamed oversize body gets 413."""

from __future__ import annotations

import json

import pytest

from tests.webhook_kit import close_web, make_web, stored_counts

CAP = 64 * 1024


@pytest.fixture
def web(sqlite_url):
    from outreach.db import make_engine

    engine = make_engine(sqlite_url)
    web = make_web(sqlite_url, engine, max_request_bytes=CAP)
    yield web
    close_web(web)
    engine.dispose()


def chunks(total: int, size: int = 8192):
    sent = 0
    while sent < total:
        piece = min(size, total - sent)
        sent += piece
        yield b"[" + b" " * (piece - 2) + b"]" if piece >= 2 else b" "


@pytest.mark.parametrize(
    "path",
    ["/webhooks/sendgrid/events", "/webhooks/twilio/status", "/webhooks/twilio/inbound", "/unsubscribe/x"],
)
def test_declared_oversize_body_is_refused_before_reading(web, path):
    response = web.client.post(path, content=b"a" * (CAP + 1))
    assert response.status_code == 413
    assert stored_counts(web.engine) == (0, 0, 0)


def test_streamed_body_without_length_is_cut_off_at_the_cap(web):
    """Chunked transfer: no Content-Length to trust; the count while reading decides."""
    response = web.client.post(
        "/webhooks/sendgrid/events",
        content=chunks(4 * CAP),
        headers={
            "X-Twilio-Email-Event-Webhook-Signature": "x",
            "X-Twilio-Email-Event-Webhook-Timestamp": "1",
        },
    )
    assert "content-length" not in {k.lower() for k in response.request.headers}
    assert response.status_code == 413
    assert stored_counts(web.engine) == (0, 0, 0)


def test_a_lying_content_length_does_not_let_more_through(web):
    """A small Content-Length over a large stream: the reader counts bytes, not the header."""
    response = web.client.post(
        "/webhooks/twilio/status", content=chunks(2 * CAP), headers={"Content-Length": "10"}
    )
    assert response.status_code == 413
    assert stored_counts(web.engine) == (0, 0, 0)


def test_body_under_the_cap_is_processed(web):
    body = json.dumps([{"event": "delivered", "timestamp": 1}] * 100).encode()
    assert len(body) < CAP
    response = web.client.post("/webhooks/sendgrid/events", content=body, headers=web.signer.headers(body))
    assert response.status_code == 204
    assert stored_counts(web.engine)[0] == 1  # 100 identical events: one stored


def test_malformed_content_length_is_refused(web):
    response = web.client.post("/webhooks/twilio/status", content=b"a=b", headers={"Content-Length": "-5"})
    assert response.status_code == 400
