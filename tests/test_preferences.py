"""The preference centre over the real app: codes without customer ids, objections per scope in
nl and en, no opting back in, the security headers, and a letter's typed code."""

from __future__ import annotations

import base64
from datetime import date

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from outreach import preferences
from outreach.config import Settings
from outreach.db import session_scope
from outreach.models import ConsentEvent
from outreach.web.app import create_app
from tests.factories import add_customers, customer
from tests.fixture_files import OFFERS_FILE
from tests.test_one_objection import plan_email, send_todays_email

SECRET = "preference-secret-for-tests-0123456789"
SETTINGS = Settings(unsubscribe_secret=SECRET, public_url="https://bank.example")
DAY_FOR_LETTERS = date(2026, 11, 18)


@pytest.fixture
def web(db_url, engine, tmp_path):
    add_customers(engine, customer("C1"), customer("C2"))
    settings = Settings(database_url=db_url, unsubscribe_secret=SECRET, outbox_dir=tmp_path / "outbox")
    client = TestClient(create_app(settings))
    yield client
    client.close()
    if getattr(client.app.state, "engine", None) is not None:
        client.app.state.engine.dispose()


def events(engine, customer_id: str) -> list[tuple]:
    with session_scope(engine) as session:
        rows = session.execute(
            select(ConsentEvent.scope, ConsentEvent.choice, ConsentEvent.actor_kind, ConsentEvent.actor)
            .where(ConsentEvent.customer_id == customer_id)
            .order_by(ConsentEvent.id)
        )
        return [tuple(r) for r in rows]


def test_codes_are_short_authenticated_and_hide_the_customer_id():
    code = preferences.make_code(SETTINGS, "C0012345")
    assert len(code) <= 45 and "c0012345" not in code.lower()
    decoded = base64.b32decode(code.upper() + "=" * (-len(code) % 8))
    assert b"C0012345" not in decoded
    assert preferences.read_code(SETTINGS, code) == "C0012345"
    assert (
        preferences.read_code(SETTINGS, preferences.letter_code(SETTINGS, "C0012345").lower()) == "C0012345"
    )
    assert preferences.preference_url(SETTINGS, "C1").startswith("https://bank.example/p/")
    flipped = code[:10] + ("a" if code[10] != "a" else "b") + code[11:]
    for bad in (flipped, code[:-1], "x" * 20, ""):
        with pytest.raises(preferences.InvalidCode):
            preferences.read_code(SETTINGS, bad)
    other = Settings(unsubscribe_secret="another-secret-entirely-0123")
    with pytest.raises(preferences.InvalidCode):
        preferences.read_code(other, code)


def test_page_offers_every_scope_with_labels_and_sends_the_security_headers(web):
    response = web.get(f"/p/{preferences.make_code(SETTINGS, 'C1')}")
    assert response.status_code == 200
    headers = response.headers
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["Referrer-Policy"] == "no-referrer"
    assert headers["Cache-Control"] == "no-store"
    page = response.text
    assert '<html lang="nl">' in page and "Geen enkele aanbieding meer" in page
    for scope in ("all", "email", "sms", "letter", "phone"):
        assert f'id="scope-{scope}"' in page and f'for="scope-{scope}"' in page
    assert 'value="topic:credit"' in page
    assert "opt_in" not in page and "aanmelden" not in page.lower()
    english = web.get(f"/p/{preferences.make_code(SETTINGS, 'C1')}?lang=en").text
    assert '<html lang="en">' in english and "No offers at all, by any channel" in english


def test_ticked_scopes_are_objected_to_at_once_and_shown_as_off(web, engine):
    code = preferences.make_code(SETTINGS, "C1")
    done = web.post(f"/p/{code}", data={"scope": ["email", "topic:credit", "opt_in", "topic:nonsense"]})
    assert done.status_code == 200 and "Opgeslagen" in done.text
    assert events(engine, "C1") == [
        ("email", "opt_out", "customer", "preference-centre"),
        ("topic:credit", "opt_out", "customer", "preference-centre"),
    ]
    assert 'id="scope-email"' in done.text and "e-mail: afgemeld" in done.text
    web.post(f"/p/{code}", data={"scope": ["email"]})  # again: nothing new
    assert len(events(engine, "C1")) == 2
    everything = web.post(f"/p/{code}?lang=en", data={"scope": "all"})
    assert "by any channel" in everything.text and '<form method="post"' not in everything.text
    assert events(engine, "C2") == []


def test_nothing_ticked_and_bad_codes_get_a_clear_answer(web, engine):
    code = preferences.make_code(SETTINGS, "C1")
    assert "niets aangevinkt" in web.post(f"/p/{code}", data={}).text
    assert web.get("/p/notacode").status_code == 404
    assert web.post("/p/notacode", data={"scope": "all"}).status_code == 404
    assert events(engine, "C1") == []


def test_a_letters_code_typed_by_hand_opens_the_page(web):
    typed = preferences.letter_code(SETTINGS, "C2").lower().replace("-", " ")
    assert '<form method="get" action="/p">' in web.get("/p").text
    opened = web.get("/p", params={"code": typed})
    assert opened.status_code == 200 and 'id="scope-all"' in opened.text
    assert web.get("/p", params={"code": "ABCD-EFGH"}).status_code == 404


def test_an_objection_on_the_page_cancels_the_days_email_before_it_is_sent(web, engine, tmp_path):
    plan_email(engine)
    web.post(f"/p/{preferences.make_code(SETTINGS, 'C1')}", data={"scope": "email"})
    sent = send_todays_email(engine, tmp_path)
    assert sent == {"C1": ("cancelled", "opted_out_before_send"), "C2": ("sent", None)}


def test_every_email_carries_the_customers_preference_link(engine, tmp_path):
    import email
    import re

    from outreach import ledger
    from outreach.channel_setup import open_channel
    from outreach.config import load_offers
    from outreach.dispatch import Dispatcher
    from tests.test_consent_api import DAY, NOON
    from tests.test_one_objection import plan_email

    add_customers(engine, customer("C1"), customer("C2", language="en"))
    plan_email(engine)
    settings = Settings(
        database_url=str(engine.url),
        outbox_dir=tmp_path / "outbox",
        unsubscribe_secret=SECRET,
        public_url="https://bank.example",
    )
    dispatcher = Dispatcher(
        engine, settings, load_offers(OFFERS_FILE), open_channel(settings, "email"), "w1"
    )
    with session_scope(engine) as session:
        assert dispatcher.send_ids(ledger.due_ids(session, DAY, "email", NOON)).sent == 2
    found = {}
    for path in (tmp_path / "outbox").glob("*/email/*.eml"):
        mail = email.message_from_bytes(path.read_bytes())
        text = next(p for p in mail.walk() if p.get_content_type() == "text/plain").get_payload(decode=True)
        code = re.search(rb"https://bank\.example/p/([a-z2-7]+)", text).group(1).decode()
        found[preferences.read_code(SETTINGS, code)] = text.decode()
    assert set(found) == {"C1", "C2"}
    assert "Helemaal geen aanbiedingen meer" in found["C1"] and "No offers at all" in found["C2"]


@pytest.mark.parametrize(("language", "says"), [("nl", "en vul code"), ("en", "and enter code")])
def test_every_letter_prints_the_page_and_the_code(language, says):
    from outreach.config import load_offers
    from outreach.dispatch import preference_links
    from outreach.rendering import Renderer, message_context
    from tests.factories import customer as row

    person = row("C0012345", language=language)
    links = preference_links(SETTINGS, type("C", (), person))
    for offer in load_offers(OFFERS_FILE).offers:
        context = message_context(person, offer, {"trigger": "t"}, DAY_FOR_LETTERS, None, links)
        body = Renderer("templates").render("letter", offer.template_for("letter"), language, context).body
        assert f"https://bank.example/p {says} {links['code']}" in " ".join(body.split()), offer.code
        assert preferences.read_code(SETTINGS, links["code"]) == "C0012345"
