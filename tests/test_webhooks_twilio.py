"""Twilio status callbacks and inbound SMS through the app, signed with the SDK's own algorithm."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from outreach import consent
from outreach.db import session_scope
from outreach.models import Customer, DeliveryEventRecord, InboundMessage
from tests.factories import add_customers, customer
from tests.webhook_kit import (
    PUBLIC_URL,
    add_message,
    close_web,
    consent_events,
    make_web,
    message,
    status_of,
    stored_counts,
    twilio_signature,
)

STATUS = "/webhooks/twilio/status"
INBOUND = "/webhooks/twilio/inbound"
SID = "SM0123456789abcdef0123456789abcdef"
MOBILE = "+31612345678"


@pytest.fixture
def web(db_url, engine):
    add_customers(engine, customer("C1", mobile=MOBILE), customer("C2", mobile="+31687654321"))
    web = make_web(db_url, engine)
    yield web
    close_web(web)


def status_params(status: str, sid: str = SID, **extra) -> dict:
    params = {
        "AccountSid": "AC" + "0" * 32,
        "MessageSid": sid,
        "SmsSid": sid,
        "MessageStatus": status,
        "SmsStatus": status,
        "From": "+3197010000000",
        "To": MOBILE,
        "ApiVersion": "2010-04-01",
    }
    params.update(extra)
    return params


def inbound_params(body: str, sid: str = "SMin0001", sender: str = MOBILE, **extra) -> dict:
    params = {
        "AccountSid": "AC" + "0" * 32,
        "MessageSid": sid,
        "SmsSid": sid,
        "From": sender,
        "To": "+3197010000000",
        "Body": body,
        "NumMedia": "0",
    }
    params.update(extra)
    return params


def test_signed_status_callback_moves_the_message_forward(web):
    mid = add_message(web.engine, "C1", provider_id=SID)
    response = web.twilio(STATUS, status_params("delivered"))
    assert response.status_code == 204
    assert status_of(web.engine, mid) == "delivered"
    assert stored_counts(web.engine)[0] == 1


@pytest.mark.parametrize(
    "tamper",
    ["unsigned", "wrong_token", "altered_param", "added_param", "other_url", "host_header_url"],
)
def test_unsigned_or_forged_callbacks_are_refused_and_record_nothing(web, tamper):
    mid = add_message(web.engine, "C1", provider_id=SID)
    params = status_params("failed", ErrorCode="30006")
    signed = twilio_signature(PUBLIC_URL + STATUS, params)
    if tamper == "unsigned":
        response = web.twilio(STATUS, params, signature="")
    elif tamper == "wrong_token":
        response = web.twilio(
            STATUS, params, signature=twilio_signature(PUBLIC_URL + STATUS, params, "x" * 32)
        )
    elif tamper == "altered_param":
        response = web.twilio(STATUS, {**params, "MessageStatus": "delivered"}, signature=signed)
    elif tamper == "added_param":  # Twilio signs every parameter: an extra one breaks the signature
        response = web.twilio(STATUS, {**params, "Injected": "1"}, signature=signed)
    elif tamper == "other_url":  # a signature made for another endpoint
        response = web.twilio(STATUS, params, url=PUBLIC_URL + INBOUND)
    else:  # signed for the URL the test client's Host header claims, not the configured public URL
        response = web.twilio(STATUS, params, url="http://testserver" + STATUS)
    assert response.status_code == 403
    assert stored_counts(web.engine) == (0, 0, 0)
    assert status_of(web.engine, mid) == "sent"


def test_repeated_callback_is_stored_once_and_changes_nothing(web):
    mid = add_message(web.engine, "C1", provider_id=SID)
    for _ in range(3):
        assert web.twilio(STATUS, status_params("delivered")).status_code == 204
    assert stored_counts(web.engine)[0] == 1
    with session_scope(web.engine) as session:
        transitions = session.execute(
            select(DeliveryEventRecord.event_type).where(DeliveryEventRecord.message_id == mid)
        ).all()
    assert [t[0] for t in transitions] == ["delivered"]


def test_late_sent_after_delivered_changes_nothing(web):
    mid = add_message(web.engine, "C1", provider_id=SID)
    web.twilio(STATUS, status_params("delivered"))
    web.twilio(STATUS, status_params("sent"))
    web.twilio(STATUS, status_params("queued"))
    assert status_of(web.engine, mid) == "delivered"
    assert stored_counts(web.engine)[0] == 3  # every event kept, for the audit trail


def test_undelivered_records_the_error_and_a_dead_number_becomes_invalid(web):
    mid = add_message(web.engine, "C1", provider_id=SID)
    assert web.twilio(STATUS, status_params("undelivered", ErrorCode="30006")).status_code == 204
    row = message(web.engine, mid)
    assert (row.status, row.last_error_code) == ("undelivered", "30006")
    with session_scope(web.engine) as session:
        assert session.get(Customer, "C1").mobile_valid is False
        assert session.get(Customer, "C2").mobile_valid is True


def test_error_21610_records_the_opt_out_twilio_already_holds(web):
    add_message(web.engine, "C1", provider_id=SID)
    web.twilio(STATUS, status_params("failed", ErrorCode="21610"))
    assert consent_events(web.engine, "C1") == [("sms", "opt_out", "twilio:failed")]


def test_callback_carrying_our_id_settles_an_unknown_message(web):
    """A send that timed out (status unknown, no SID) is settled by the callback Twilio still makes."""
    mid = add_message(web.engine, "C1", status="unknown", provider_id=None)
    path = f"{STATUS}?outreach_id={mid}"
    assert web.twilio(path, status_params("sent")).status_code == 204
    row = message(web.engine, mid)
    assert (row.status, row.provider_id) == ("sent", SID)
    web.twilio(STATUS, status_params("delivered"))  # later callbacks match by the SID now stored
    assert status_of(web.engine, mid) == "delivered"


def test_callback_for_an_unknown_message_is_stored_and_reported(web):
    response = web.twilio(STATUS, status_params("delivered", sid="SMnotours"))
    assert response.status_code == 204
    with session_scope(web.engine) as session:
        orphan = session.scalars(select(DeliveryEventRecord)).one()
    assert orphan.message_id is None and orphan.provider_message_id == "SMnotours"


@pytest.mark.parametrize("word", ["STOP", "stop", "STOPPEN", "Afmelden", "Stop."])
def test_stop_words_opt_out_and_start_opts_back_in(web, word):
    response = web.twilio(INBOUND, inbound_params(word))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    with session_scope(web.engine) as session:
        assert consent.current(session, "C1").allows("sms") is False
        assert consent.current(session, "C2").allows("sms") is True
    assert web.twilio(INBOUND, inbound_params("START", sid="SMin0002")).status_code == 200
    with session_scope(web.engine) as session:
        assert consent.current(session, "C1").allows("sms") is True
    events = consent_events(web.engine, "C1")
    assert [(scope, choice) for scope, choice, _ in events] == [("sms", "opt_out"), ("sms", "opt_in")]
    assert events[0][2] == f"sms:{word.strip().upper()}"


@pytest.mark.parametrize("word", ["STOPALL", " stopall "])
def test_stopall_objects_to_all_marketing_and_start_does_not_undo_it(web, word):
    """Every SMS names STOPALL as the way to stop all marketing at once (templates check)."""
    assert web.twilio(INBOUND, inbound_params(word)).status_code == 200
    assert web.twilio(INBOUND, inbound_params("START", sid="SMin0002")).status_code == 200
    with session_scope(web.engine) as session:
        state = consent.current(session, "C1")
        assert not state.allows("sms") and not state.allows("email") and not state.allows("letter")
    assert consent_events(web.engine, "C1") == [
        ("all", "opt_out", "sms:STOPALL"),
        ("sms", "opt_in", "sms:START"),
    ]


def test_repeated_stop_webhook_records_one_opt_out(web):
    for _ in range(2):
        assert web.twilio(INBOUND, inbound_params("STOPPEN")).status_code == 200
    assert consent_events(web.engine, "C1") == [("sms", "opt_out", "sms:STOPPEN")]
    assert stored_counts(web.engine)[1] == 1


def test_advanced_opt_out_type_wins_over_the_body(web):
    # Twilio's Advanced Opt-Out decided this was an opt-out, and already answered the sender
    response = web.twilio(INBOUND, inbound_params("nee bedankt", OptOutType="STOP"))
    assert "<Message>" not in response.text
    assert consent_events(web.engine, "C1") == [("sms", "opt_out", "twilio:OptOutType=STOP")]


def test_help_gets_a_twiml_answer_and_changes_no_consent(web):
    response = web.twilio(INBOUND, inbound_params("HELP"))
    assert response.status_code == 200
    assert "<Message>" in response.text and "STOP" in response.text
    assert consent_events(web.engine, "C1") == []


def test_other_text_is_stored_as_a_reply_and_not_acted_on(web):
    mid = add_message(web.engine, "C1", provider_id=SID)
    response = web.twilio(INBOUND, inbound_params("Stop please, wat kost dat?"))
    assert response.status_code == 200 and "<Message>" not in response.text
    assert consent_events(web.engine, "C1") == []
    with session_scope(web.engine) as session:
        reply = session.scalars(select(InboundMessage)).one()
        assert (reply.intent, reply.customer_id, reply.message_id) == ("reply", "C1", mid)
    assert status_of(web.engine, mid) == "delivered"  # a reply proves delivery


def test_stop_from_a_number_no_customer_has_is_kept(web):
    response = web.twilio(INBOUND, inbound_params("STOP", sender="+31600000000"))
    assert response.status_code == 200
    with session_scope(web.engine) as session:
        stored = session.scalars(select(InboundMessage)).one()
    assert (stored.intent, stored.customer_id) == ("stop", None)
    assert stored_counts(web.engine)[2] == 0


def test_forged_stop_is_refused(web):
    params = inbound_params("STOP")
    response = web.twilio(INBOUND, params, signature=twilio_signature(PUBLIC_URL + INBOUND, params, "y" * 32))
    assert response.status_code == 403
    assert stored_counts(web.engine) == (0, 0, 0)


def test_missing_token_configuration_refuses_instead_of_accepting(db_url, engine):
    web = make_web(db_url, engine, twilio_auth_token=None)
    try:
        response = web.twilio(STATUS, status_params("delivered"))
        assert response.status_code == 503
        assert stored_counts(engine) == (0, 0, 0)
    finally:
        close_web(web)
