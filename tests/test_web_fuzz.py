"""Generated requests find no 5xx: schemathesis over the app's OpenAPI (unsigned, and Twilio-signed
so the parsers and the store are reached), and hypothesis over signed SendGrid batches and Twilio
forms of any content, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import allow_header_conformance, positive_data_acceptance

from outreach.db import upgrade
from outreach.web.app import create_app
from tests.webhook_kit import PUBLIC_URL, SendGridSigner, close_web, make_settings, make_web, twilio_signature

# schemathesis gives every generated case of a test the same node id, and pytest-xdist would run
# only one of them: `make test` runs this file in its serial part
pytestmark = pytest.mark.serial

FAST = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)


# schemathesis' lazy (fixture) loader reads a pytest private attribute that pytest 9 dropped, so the
# app is built at import; its engine is made on first request, after the fixture has migrated the file
DB_FILE = Path(tempfile.gettempdir()) / f"outreach-fuzz-{os.getpid()}.db"
SIGNER = SendGridSigner()
APP = create_app(make_settings(f"sqlite:///{DB_FILE}", SIGNER))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture(scope="module", autouse=True)
def migrated():
    upgrade(f"sqlite:///{DB_FILE}")
    yield
    if getattr(APP.state, "engine", None) is not None:
        APP.state.engine.dispose()
    for leftover in DB_FILE.parent.glob(DB_FILE.name + "*"):  # the database and its WAL files
        leftover.unlink(missing_ok=True)


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


TEXT = st.text(max_size=300)  # any characters, NUL included, some longer than the columns
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
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), TEXT)
EVENTS = st.lists(
    st.fixed_dictionaries(
        {"event": EVENT_NAMES},
        optional={
            "email": st.one_of(st.emails(), TEXT),
            "timestamp": st.one_of(st.integers(), TEXT, st.floats(allow_nan=False)),
            "sg_event_id": st.one_of(TEXT, st.integers()),
            "sg_message_id": st.one_of(TEXT, st.integers()),
            "outreach_id": st.one_of(TEXT, st.integers(), st.none()),
            "reason": SCALARS,
            "response": SCALARS,
            "type": st.sampled_from(["bounce", "blocked", "x"]),
            "asm_group_id": SCALARS,
            "category": st.one_of(TEXT, st.lists(TEXT, max_size=2)),
        },
    ),
    max_size=6,
)
FORMS = st.fixed_dictionaries(
    {"MessageSid": TEXT.filter(bool), "From": st.one_of(st.just("+31612345678"), TEXT.filter(bool))},
    optional={
        "MessageStatus": st.one_of(st.sampled_from(["queued", "sent", "delivered", "failed", "read"]), TEXT),
        "Body": TEXT,
        "OptOutType": st.one_of(st.sampled_from(["STOP", "START", "HELP"]), TEXT),
        "ErrorCode": TEXT,
        "To": TEXT,
    },
)


@pytest.fixture
def signed_web(db_url, engine):
    from tests.factories import add_customers, customer

    add_customers(engine, customer("C1", mobile="+31612345678"))
    web = make_web(db_url, engine)
    yield web
    close_web(web)


def test_signed_sendgrid_batches_of_any_content_get_no_server_error(signed_web):
    @given(EVENTS)
    @FAST
    def post(events):
        response = signed_web.sendgrid(events)
        assert response.status_code == 204, response.text

    post()


def test_signed_twilio_forms_of_any_content_get_no_server_error(signed_web):
    @given(FORMS, st.sampled_from(["/webhooks/twilio/status", "/webhooks/twilio/inbound"]))
    @FAST
    def post(params, path):
        response = signed_web.twilio(path, params)
        assert response.status_code in (200, 204, 400), response.text

    post()
