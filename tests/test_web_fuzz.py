"""Generated requests find no 5xx: schemathesis over the app's OpenAPI, unsigned and Twilio-signed,
and hypothesis over signed SendGrid batches of arbitrary event objects."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import allow_header_conformance, positive_data_acceptance

from outreach.db import upgrade
from outreach.web.app import create_app
from tests.webhook_kit import PUBLIC_URL, SendGridSigner, make_settings, twilio_signature

FAST = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)


# schemathesis' lazy (fixture) loader reads a pytest private attribute that pytest 9 dropped, so the
# app is built at import; its engine is made on first request, after the fixture has migrated the file
DB_FILE = Path(tempfile.mkdtemp(prefix="outreach-fuzz-")) / "outreach.db"
SIGNER = SendGridSigner()
APP = create_app(make_settings(f"sqlite:///{DB_FILE}", SIGNER))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture(scope="module", autouse=True)
def migrated():
    upgrade(f"sqlite:///{DB_FILE}")
    yield
    if getattr(APP.state, "engine", None) is not None:
        APP.state.engine.dispose()
    shutil.rmtree(DB_FILE.parent, ignore_errors=True)


@schema.parametrize()
@FAST
def test_generated_requests_get_no_server_error(case):
    # - every unsigned webhook request is refused (403) by design: "valid data is accepted" cannot hold
    # - Starlette answers 405 with the Allow of the first route matching the path, so GET and POST
    #   /unsubscribe/{token}, two routes, give "Allow: GET" for an OPTIONS request
    case.call_and_validate(excluded_checks=[positive_data_acceptance, allow_header_conformance])


@schema.include(path_regex="^/webhooks/twilio/").parametrize()
@FAST
def test_generated_twilio_requests_signed_correctly_get_no_server_error(case):
    """Past the signature check: the parser and the store see arbitrary (signed) form fields."""
    params = {k: v for k, v in case.body.items() if isinstance(v, str)} if isinstance(case.body, dict) else {}
    case.body = params
    case.headers = {"X-Twilio-Signature": twilio_signature(PUBLIC_URL + case.formatted_path, params)}
    response = case.call()
    assert response.status_code < 500, response.text
    assert response.status_code != 403, "the signature should have been accepted"


EVENT_NAMES = st.sampled_from(
    [
        "processed",
        "delivered",
        "deferred",
        "bounce",
        "dropped",
        "open",
        "click",
        "spamreport",
        "unsubscribe",
        "group_unsubscribe",
        "group_resubscribe",
        "weird",
    ]
)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20))
EVENTS = st.lists(
    st.fixed_dictionaries(
        {"event": EVENT_NAMES},
        optional={
            "email": st.one_of(st.emails(), st.text(max_size=10)),
            "timestamp": st.one_of(st.integers(), st.text(max_size=5), st.floats(allow_nan=False)),
            "sg_event_id": st.one_of(st.text(max_size=30), st.integers()),
            "sg_message_id": st.one_of(st.text(max_size=30), st.integers()),
            "outreach_id": st.one_of(st.text(max_size=25), st.integers(), st.none()),
            "reason": SCALARS,
            "type": st.sampled_from(["bounce", "blocked", "x"]),
            "asm_group_id": SCALARS,
            "category": st.one_of(st.text(max_size=5), st.lists(st.text(max_size=5), max_size=2)),
        },
    ),
    max_size=6,
)


def test_signed_sendgrid_batches_of_any_shape_get_no_server_error():
    client = TestClient(APP)

    @given(EVENTS)
    @FAST
    def post(events):
        body = json.dumps(events).encode()
        response = client.post("/webhooks/sendgrid/events", content=body, headers=SIGNER.headers(body))
        assert response.status_code == 204, response.text

    try:
        post()
    finally:
        client.close()
