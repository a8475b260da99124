"""Test kit for the web service: requests signed with the providers' real algorithms, ledger rows.

Twilio: HMAC-SHA1 through the SDK's own RequestValidator.compute_signature. SendGrid: ECDSA P-256
over ``timestamp + body`` with a key pair made here (the SDK verifies with ``cryptography``).
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime

import uvicorn
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, insert, select
from twilio.request_validator import RequestValidator

from outreach.config import SendGridSettings, Settings, TwilioSettings
from outreach.db import session_scope
from outreach.logs import log_config
from outreach.models import ConsentEvent, DeliveryEventRecord, InboundMessage, Message
from outreach.web.app import create_app

PUBLIC_URL = "https://hooks.bank.example"
TWILIO_TOKEN = "0123456789abcdef0123456789abcdef"
UNSUBSCRIBE_SECRET = "unsubscribe-secret-for-tests-only-0123456789"
DAY = date(2026, 11, 18)
SENT_AT = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)


class SendGridSigner:
    """Signs event posts the way SendGrid does; ``public_key`` is what its settings page shows."""

    def __init__(self) -> None:
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        der = self.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.public_key = base64.b64encode(der).decode()

    def headers(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        signature = self.private_key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
            "Content-Type": "application/json",
        }


def twilio_signature(url: str, params: dict, token: str = TWILIO_TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, params)


@dataclass
class Web:
    client: TestClient
    engine: Engine
    settings: Settings
    signer: SendGridSigner

    def twilio(self, path: str, params: dict, *, signature: str | None = None, url: str | None = None):
        """POST form params to a Twilio route, signed over the public URL (or the one given)."""
        sign_url = url or PUBLIC_URL + path
        sig = twilio_signature(sign_url, params) if signature is None else signature
        return self.client.post(path, data=params, headers={"X-Twilio-Signature": sig} if sig else {})

    def sendgrid(self, events: list[dict] | bytes, *, timestamp: int | None = None, headers=None):
        body = events if isinstance(events, bytes) else json.dumps(events).encode()
        sent_headers = self.signer.headers(body, timestamp) if headers is None else headers
        return self.client.post("/webhooks/sendgrid/events", content=body, headers=sent_headers)


def make_settings(db_url: str, signer: SendGridSigner, **overrides) -> Settings:
    values = {
        "database_url": db_url,
        "public_url": PUBLIC_URL,
        "unsubscribe_secret": UNSUBSCRIBE_SECRET,
    }
    twilio_token = overrides.pop("twilio_auth_token", TWILIO_TOKEN)
    values.update(overrides)
    return Settings(
        **values,
        twilio=TwilioSettings(auth_token=twilio_token),
        sendgrid=SendGridSettings(webhook_public_key=signer.public_key),
    )


def make_web(db_url: str, engine: Engine, **overrides) -> Web:
    signer = SendGridSigner()
    settings = make_settings(db_url, signer, **overrides)
    return Web(TestClient(create_app(settings)), engine, settings, signer)


def close_web(web: Web) -> None:
    web.client.close()
    app_engine = getattr(web.client.app.state, "engine", None)
    if app_engine is not None:
        app_engine.dispose()


def add_message(
    engine: Engine,
    customer_id: str,
    channel: str = "sms",
    status: str = "sent",
    provider_id: str | None = None,
    offer_code: str = "KIDS_SAVINGS",
    sent_at: datetime | None = SENT_AT,
    run_date: date = DAY,
) -> int:
    with session_scope(engine) as session:
        return session.execute(
            insert(Message).returning(Message.id),
            {
                "idempotency_key": f"{run_date}:{customer_id}:{offer_code}:{channel}",
                "run_date": run_date,
                "customer_id": customer_id,
                "offer_code": offer_code,
                "channel": channel,
                "status": status,
                "provider": {"sms": "twilio", "email": "sendgrid"}.get(channel) if provider_id else None,
                "provider_id": provider_id,
                "attempts": 1,
                "created_at": SENT_AT,
                "updated_at": sent_at or SENT_AT,
                "sent_at": sent_at if status != "unknown" else None,
            },
        ).scalar_one()


def status_of(engine: Engine, message_id: int) -> str:
    with session_scope(engine) as session:
        return session.scalar(select(Message.status).where(Message.id == message_id))


def message(engine: Engine, message_id: int) -> Message:
    with session_scope(engine) as session:
        return session.get(Message, message_id)


def count(engine: Engine, model) -> int:
    with session_scope(engine) as session:
        return session.scalar(select(func.count()).select_from(model))


def stored_counts(engine: Engine) -> tuple[int, int, int]:
    """(delivery events, inbound messages, consent events): what a refused request must not change."""
    return count(engine, DeliveryEventRecord), count(engine, InboundMessage), count(engine, ConsentEvent)


def consent_events(engine: Engine, customer_id: str) -> list[tuple[str, str, str]]:
    with session_scope(engine) as session:
        rows = session.execute(
            select(ConsentEvent.scope, ConsentEvent.choice, ConsentEvent.source)
            .where(ConsentEvent.customer_id == customer_id)
            .order_by(ConsentEvent.recorded_at, ConsentEvent.id)
        )
        return [tuple(row) for row in rows]


@contextmanager
def running_app(settings_for: Callable[[str], Settings]) -> Iterator[tuple[str, int]]:
    """The app under a real uvicorn on a free loopback port; ``settings_for(base_url)`` configures it
    (the public URL is only known once the port is)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    app = create_app(settings_for(base))
    server = uvicorn.Server(
        uvicorn.Config(app, log_config=log_config("WARNING"), lifespan="off", timeout_graceful_shutdown=2)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        assert server.started, "uvicorn did not start"
        yield base, port
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        if getattr(app.state, "engine", None) is not None:
            app.state.engine.dispose()
