"""Unsubscribe tokens and pages: signed, encrypted, expiring; one click records one opt-out."""

from __future__ import annotations

import base64
import time

import pytest
from itsdangerous.timed import TimestampSigner

from outreach import unsubscribe
from outreach.config import ConfigError, Settings
from tests.webhook_kit import (
    PUBLIC_URL,
    UNSUBSCRIBE_SECRET,
    close_web,
    consent_events,
    make_web,
    stored_counts,
)

SETTINGS = Settings(public_url=PUBLIC_URL, unsubscribe_secret=UNSUBSCRIBE_SECRET)


def token_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


def test_url_round_trips_and_hides_the_customer_id():
    url = unsubscribe.unsubscribe_url(SETTINGS, "C0012345", "email")
    assert url.startswith(f"{PUBLIC_URL}/unsubscribe/")
    token = token_of(url)
    assert unsubscribe.verify(token, SETTINGS) == ("C0012345", "email")
    # itsdangerous payloads are only base64: ours is ciphertext inside, so no id in any decoding
    payload = token.split(".")[0]
    decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    assert b"C0012345" not in decoded and "C0012345" not in url


def test_every_link_is_different_but_each_verifies():
    tokens = {token_of(unsubscribe.unsubscribe_url(SETTINGS, "C1", "sms")) for _ in range(5)}
    assert len(tokens) == 5
    assert {unsubscribe.verify(t, SETTINGS) for t in tokens} == {("C1", "sms")}


@pytest.mark.parametrize("part", [0, 1, 2])
def test_any_altered_character_is_refused(part):
    token = token_of(unsubscribe.unsubscribe_url(SETTINGS, "C1", "email"))
    pieces = token.split(".")
    flipped = "A" if pieces[part][3] != "A" else "B"
    pieces[part] = pieces[part][:3] + flipped + pieces[part][4:]
    with pytest.raises(unsubscribe.InvalidToken):
        unsubscribe.verify(".".join(pieces), SETTINGS)


def test_token_from_another_secret_is_refused():
    other = Settings(public_url=PUBLIC_URL, unsubscribe_secret="someone-else")
    token = token_of(unsubscribe.unsubscribe_url(other, "C1", "email"))
    with pytest.raises(unsubscribe.InvalidToken):
        unsubscribe.verify(token, SETTINGS)


def test_old_token_expires(monkeypatch):
    real = TimestampSigner.get_timestamp
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: int(time.time()) - 366 * 86400)
    token = token_of(unsubscribe.unsubscribe_url(SETTINGS, "C1", "email"))
    monkeypatch.setattr(TimestampSigner, "get_timestamp", real)
    with pytest.raises(unsubscribe.ExpiredToken):
        unsubscribe.verify(token, SETTINGS)
    assert unsubscribe.verify(token, SETTINGS, max_age_days=400) == ("C1", "email")


def test_no_secret_no_links():
    with pytest.raises(ConfigError, match="OUTREACH_UNSUBSCRIBE_SECRET"):
        unsubscribe.unsubscribe_url(Settings(unsubscribe_secret=None), "C1", "email")


def test_unknown_scope_is_refused_when_minting():
    with pytest.raises(ValueError, match="scope"):
        unsubscribe.unsubscribe_url(SETTINGS, "C1", "carrier-pigeon")


@pytest.fixture
def web(db_url, engine):
    web = make_web(db_url, engine)
    yield web
    close_web(web)


def path_for(web, customer_id: str, scope: str = "email") -> str:
    return "/unsubscribe/" + token_of(unsubscribe.unsubscribe_url(web.settings, customer_id, scope))


def test_get_shows_a_confirm_button_and_changes_nothing(web):
    response = web.client.get(path_for(web, "C1"))
    assert response.status_code == 200
    assert '<form method="post"' in response.text and "<button" in response.text
    assert stored_counts(web.engine) == (0, 0, 0)


def test_one_click_post_records_the_opt_out_once(web):
    path = path_for(web, "C1")
    response = web.client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200 and "afgemeld" in response.text
    assert consent_events(web.engine, "C1") == [("email", "opt_out", "email:list-unsubscribe")]
    again = web.client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert again.status_code == 200
    assert len(consent_events(web.engine, "C1")) == 1
    assert consent_events(web.engine, "C2") == []


def test_confirm_button_post_records_the_page_as_source(web):
    web.client.post(path_for(web, "C2", "sms"), data={"confirm": "yes"})
    assert consent_events(web.engine, "C2") == [("sms", "opt_out", "web:unsubscribe-page")]


def test_a_link_cannot_be_forged_for_another_customer(web):
    own = path_for(web, "C1")
    # splice C2's encrypted payload under C1's signature: the signature no longer matches
    c2_payload = path_for(web, "C2").split("/")[-1].split(".")[0]
    forged = "/unsubscribe/" + ".".join([c2_payload, *own.split("/")[-1].split(".")[1:]])
    for method in ("get", "post"):
        assert getattr(web.client, method)(forged).status_code == 403
    assert web.client.post("/unsubscribe/" + "x" * 40).status_code == 403
    assert stored_counts(web.engine) == (0, 0, 0)


def test_expired_link_explains_itself(web, monkeypatch):
    real = TimestampSigner.get_timestamp
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: int(time.time()) - 400 * 86400)
    path = path_for(web, "C1")
    monkeypatch.setattr(TimestampSigner, "get_timestamp", real)
    response = web.client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 410 and "verlopen" in response.text
    assert stored_counts(web.engine) == (0, 0, 0)


def test_general_page_exists_for_links_without_a_token(web):
    response = web.client.get("/unsubscribe")
    assert response.status_code == 200 and "STOP" in response.text


def test_dispatcher_links_personal_with_a_secret_general_for_dev_and_refuses_real_sends_without():
    from outreach.dispatch import unsubscribe_link

    personal = unsubscribe_link(SETTINGS, "C1", "email")
    assert personal.startswith(f"{PUBLIC_URL}/unsubscribe/") and len(personal) > len(PUBLIC_URL) + 60
    dev = Settings(public_url=PUBLIC_URL, unsubscribe_secret=None)
    assert unsubscribe_link(dev, "C1", "email") == f"{PUBLIC_URL}/unsubscribe"
    real = Settings(public_url=PUBLIC_URL, unsubscribe_secret=None, email_backend="sendgrid")
    with pytest.raises(ConfigError, match="OUTREACH_UNSUBSCRIBE_SECRET"):
        unsubscribe_link(real, "C1", "email")
