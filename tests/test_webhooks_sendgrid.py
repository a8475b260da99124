"""SendGrid's signed event webhook through the app: ECDSA P-256 with a key pair made in the test."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import select

from outreach.db import session_scope
from outreach.models import Customer, DeliveryEventRecord
from tests.factories import add_customers, customer
from tests.webhook_kit import (
    SendGridSigner,
    add_message,
    close_web,
    consent_events,
    make_web,
    message,
    status_of,
    stored_counts,
)

EMAIL = "anne@example.nl"


@pytest.fixture
def web(db_url, engine):
    add_customers(engine, customer("C1", email=EMAIL), customer("C2", email="bob@example.nl"))
    web = make_web(db_url, engine)
    yield web
    close_web(web)


def event(kind: str, message_id: int | None, n: int = 1, **extra) -> dict:
    item = {
        "email": EMAIL,
        "timestamp": 1_795_000_000 + n,
        "event": kind,
        "sg_event_id": f"ZGVsaXZlcmVk-{kind}-{n}",
        "sg_message_id": f"14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.{n}",
        "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
        "category": ["offer"],
    }
    if message_id is not None:
        item["outreach_id"] = str(message_id)
    item.update(extra)
    return item


def test_signed_batch_is_accepted_and_moves_the_message(web):
    mid = add_message(web.engine, "C1", channel="email")
    response = web.sendgrid([event("processed", mid, 1), event("delivered", mid, 2), event("open", mid, 3)])
    assert response.status_code == 204
    assert status_of(web.engine, mid) == "delivered"
    assert stored_counts(web.engine)[0] == 3


@pytest.mark.parametrize("tamper", ["other_key", "altered_body", "stale", "future", "no_headers", "garbage"])
def test_forged_altered_or_replayed_posts_are_refused_and_record_nothing(web, tamper):
    mid = add_message(web.engine, "C1", channel="email")
    body = json.dumps([event("unsubscribe", mid)]).encode()
    now = int(time.time())
    if tamper == "other_key":
        response = web.sendgrid(body, headers=SendGridSigner().headers(body))
    elif tamper == "altered_body":
        headers = web.signer.headers(body)
        response = web.sendgrid(body.replace(b"unsubscribe", b"delivered"), headers=headers)
    elif tamper == "stale":  # a genuine signature, replayed after the tolerance (600 s)
        response = web.sendgrid(body, timestamp=now - 601)
    elif tamper == "future":
        response = web.sendgrid(body, timestamp=now + 3600)
    elif tamper == "no_headers":
        response = web.sendgrid(body, headers={"Content-Type": "application/json"})
    else:
        response = web.sendgrid(
            body,
            headers={
                "X-Twilio-Email-Event-Webhook-Signature": "not base64 at all!",
                "X-Twilio-Email-Event-Webhook-Timestamp": str(now),
            },
        )
    assert response.status_code == 403
    assert stored_counts(web.engine) == (0, 0, 0)
    assert status_of(web.engine, mid) == "sent"


def test_signature_covers_the_exact_raw_body(web):
    """Whitespace is part of what SendGrid signs: the same JSON re-serialised is not the same body."""
    mid = add_message(web.engine, "C1", channel="email")
    body = json.dumps([event("delivered", mid)], indent=1).encode() + b"\r\n"
    assert web.sendgrid(body, headers=web.signer.headers(body)).status_code == 204
    compact = json.dumps(json.loads(body)).encode()
    assert web.sendgrid(compact, headers=web.signer.headers(body)).status_code == 403


def test_duplicates_by_id_and_by_content_change_nothing(web):
    mid = add_message(web.engine, "C1", channel="email")
    delivered = event("delivered", mid, 5)
    assert web.sendgrid([delivered]).status_code == 204
    assert web.sendgrid([delivered]).status_code == 204  # SendGrid's retry: same sg_event_id
    assert web.sendgrid([delivered, delivered]).status_code == 204  # repeated inside one batch
    assert stored_counts(web.engine)[0] == 1
    # an event without an sg_event_id is known by its content alone
    anonymous = {k: v for k, v in event("open", mid, 6).items() if k != "sg_event_id"}
    assert web.sendgrid([anonymous]).status_code == 204
    assert web.sendgrid([anonymous, anonymous]).status_code == 204
    assert stored_counts(web.engine)[0] == 2
    assert status_of(web.engine, mid) == "delivered"


def test_distinct_events_with_equal_content_are_all_stored(web):
    """Opens of one email in the same second differ only in their sg_event_id: each is an event."""
    mid = add_message(web.engine, "C1", channel="email")
    opens = [{**event("open", mid, 7), "sg_event_id": f"b3Blbi{n:05d}"} for n in range(300)]
    assert web.sendgrid(opens).status_code == 204
    assert stored_counts(web.engine)[0] == 300
    assert web.sendgrid(opens[:50]).status_code == 204  # SendGrid's retry of part of the batch
    assert stored_counts(web.engine)[0] == 300


def test_out_of_order_events_never_move_backwards(web):
    mid = add_message(web.engine, "C1", channel="email")
    web.sendgrid([event("delivered", mid, 9)])
    web.sendgrid([event("deferred", mid, 2, response="450 try later"), event("processed", mid, 1)])
    assert status_of(web.engine, mid) == "delivered"
    # and inside one batch the furthest status wins whatever the order
    other = add_message(web.engine, "C2", channel="email", offer_code="TRAVEL")
    web.sendgrid([event("delivered", other, 12), event("processed", other, 11)])
    assert status_of(web.engine, other) == "delivered"


def test_hard_bounce_marks_the_address_invalid(web):
    mid = add_message(web.engine, "C1", channel="email")
    web.sendgrid([event("bounce", mid, type="bounce", reason="550 5.1.1 user unknown", status="5.1.1")])
    row = message(web.engine, mid)
    assert row.status == "bounced" and row.last_error_code == "bounced"
    with session_scope(web.engine) as session:
        assert session.get(Customer, "C1").email_valid is False
        assert session.get(Customer, "C2").email_valid is True


def test_blocked_bounce_fails_the_message_but_keeps_the_address(web):
    mid = add_message(web.engine, "C1", channel="email")
    web.sendgrid([event("bounce", mid, type="blocked", reason="554 blocked by policy")])
    assert status_of(web.engine, mid) == "bounced"
    with session_scope(web.engine) as session:
        assert session.get(Customer, "C1").email_valid is True


def test_bounce_for_an_address_the_customer_no_longer_has_changes_no_contact_data(web):
    mid = add_message(web.engine, "C1", channel="email")
    web.sendgrid([event("bounce", mid, email="old-address@example.nl", type="bounce")])
    with session_scope(web.engine) as session:
        assert session.get(Customer, "C1").email_valid is True


@pytest.mark.parametrize("kind", ["spamreport", "unsubscribe", "group_unsubscribe"])
def test_objections_record_an_email_opt_out_with_their_source(web, kind):
    mid = add_message(web.engine, "C1", channel="email")
    web.sendgrid([event(kind, mid, asm_group_id=12)])
    assert consent_events(web.engine, "C1") == [("email", "opt_out", f"sendgrid:{kind}")]
    assert consent_events(web.engine, "C2") == []


@pytest.mark.parametrize(
    ("reason", "consent", "address_valid"),
    [
        ("Unsubscribed Address", [("email", "opt_out", "sendgrid:dropped:unsubscribed")], True),
        ("Spam Reporting Address", [("email", "opt_out", "sendgrid:dropped:spam_report")], True),
        ("Bounced Address", [], False),
        ("Invalid", [], False),
        ("Invalid SMTPAPI header", [], True),  # our request was wrong, not the address
        ("Spam Content", [], True),  # this content was refused, not the recipient
    ],
)
def test_a_drop_for_a_suppressed_address_records_what_it_says(web, reason, consent, address_valid):
    """SendGrid drops mail to addresses on its suppression lists without trying: an unsubscribed
    or spam-reporting address is an email opt-out here too, a bounced or invalid one a dead address."""
    mid = add_message(web.engine, "C1", channel="email")
    assert web.sendgrid([event("dropped", mid, reason=reason)]).status_code == 204
    row = message(web.engine, mid)
    assert row.status == "failed" and reason in (row.last_error or "")
    assert consent_events(web.engine, "C1") == consent
    with session_scope(web.engine) as session:
        assert session.get(Customer, "C1").email_valid is address_valid
        assert session.get(Customer, "C2").email_valid is True
    again = web.sendgrid([event("dropped", mid, reason=reason)])  # SendGrid retries: nothing twice
    assert again.status_code == 204 and consent_events(web.engine, "C1") == consent


def test_group_resubscribe_opts_back_in(web):
    mid = add_message(web.engine, "C1", channel="email")
    web.sendgrid([event("group_unsubscribe", mid, 1), event("group_resubscribe", mid, 2)])
    assert [choice for _, choice, _ in consent_events(web.engine, "C1")] == ["opt_out", "opt_in"]


def test_unsubscribe_without_our_id_still_reaches_the_customer_by_address(web):
    web.sendgrid([event("unsubscribe", None)])
    assert consent_events(web.engine, "C1") == [("email", "opt_out", "sendgrid:unsubscribe")]


def test_events_for_unknown_messages_are_stored_not_dropped(web):
    response = web.sendgrid([event("delivered", 999_999), event("delivered", None, 2, email="x@y.nl")])
    assert response.status_code == 204
    with session_scope(web.engine) as session:
        orphans = session.scalars(select(DeliveryEventRecord)).all()
    assert len(orphans) == 2 and all(o.message_id is None for o in orphans)


def test_signed_but_malformed_payload_is_a_400(web):
    for body in (b"{not json", b'{"event": "delivered"}', b"[1, 2]"):
        assert web.sendgrid(body, headers=web.signer.headers(body)).status_code == 400
    assert stored_counts(web.engine) == (0, 0, 0)
