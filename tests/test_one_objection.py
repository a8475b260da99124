"""One objection, everywhere: the SMS STOP reply and the unsubscribe page offer the one step that
stops all marketing, and taking it cancels the customer's next planned message of the day, on
another channel, before it is sent."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from outreach import consent, ledger, unsubscribe
from outreach.channel_setup import open_channel
from outreach.config import Settings, load_offers
from outreach.db import session_scope
from outreach.dispatch import Dispatcher
from outreach.models import ConsentEvent, Message
from outreach.planning import decide_day
from tests.factories import add_candidates, add_customers, customer
from tests.fixture_files import OFFERS_FILE
from tests.test_consent_api import DAY, NOON
from tests.test_webhooks_twilio import INBOUND, MOBILE, inbound_params
from tests.webhook_kit import close_web, make_web


@pytest.fixture
def web(db_url, engine):
    add_customers(engine, customer("C1", mobile=MOBILE), customer("C2", mobile="+31687654321"))
    web = make_web(db_url, engine)
    yield web
    close_web(web)


def scopes(engine, customer_id: str) -> list[tuple[str, str, str]]:
    with session_scope(engine) as session:
        rows = session.execute(
            select(ConsentEvent.scope, ConsentEvent.choice, ConsentEvent.actor_kind)
            .where(ConsentEvent.customer_id == customer_id)
            .order_by(ConsentEvent.id)
        )
        return [tuple(r) for r in rows]


def send_todays_email(engine, tmp_path) -> dict[str, tuple[str, str | None]]:
    settings = Settings(database_url=str(engine.url), outbox_dir=tmp_path / "outbox")
    dispatcher = Dispatcher(
        engine, settings, load_offers(OFFERS_FILE), open_channel(settings, "email"), "w1"
    )
    with session_scope(engine) as session:
        due = ledger.due_ids(session, DAY, "email", NOON)
    dispatcher.send_ids(due)
    with session_scope(engine) as session:
        return {m.customer_id: (m.status, m.last_error_code) for m in session.scalars(select(Message))}


def plan_email(engine) -> None:
    add_candidates(engine, DAY, ("C1", "KIDS_SAVINGS"), ("C2", "KIDS_SAVINGS"))
    decide_day(engine, DAY, load_offers(OFFERS_FILE), now=NOON)


def test_the_stop_reply_offers_stop_alles_and_a_plain_stop_keeps_to_sms(web):
    response = web.twilio(INBOUND, inbound_params("STOP"))
    assert "STOP ALLES" in response.text and "STOP ALL" in response.text
    assert scopes(web.engine, "C1") == [("sms", "opt_out", "customer")]


@pytest.mark.parametrize("words", ["STOP ALLES", "stop alles", "Stopalles", "STOP ALL."])
def test_stop_alles_by_sms_objects_to_all_marketing(web, words):
    response = web.twilio(INBOUND, inbound_params(words))
    assert "geen enkel kanaal" in response.text
    assert scopes(web.engine, "C1") == [("all", "opt_out", "customer")]
    with session_scope(web.engine) as session:
        assert consent.current(session, "C1").allows("email") is False


def test_stop_alles_cancels_the_days_email_before_it_is_sent(web, tmp_path):
    plan_email(web.engine)
    web.twilio(INBOUND, inbound_params("STOP ALLES"))
    sent = send_todays_email(web.engine, tmp_path)
    assert sent == {"C1": ("cancelled", "opted_out_before_send"), "C2": ("sent", None)}


def test_the_unsubscribe_page_offers_all_marketing_in_one_step(web, tmp_path):
    plan_email(web.engine)
    token = unsubscribe.unsubscribe_url(web.settings, "C1", "sms").rsplit("/", 1)[1]
    page = web.client.get(f"/unsubscribe/{token}")
    assert 'name="everything" value="yes"' in page.text and "Stop all offers" in page.text
    done = web.client.post(f"/unsubscribe/{token}", data={"everything": "yes"})
    assert "via geen enkel kanaal" in done.text
    assert scopes(web.engine, "C1") == [("all", "opt_out", "customer")]
    sent = send_todays_email(web.engine, tmp_path)  # the link was an SMS's; the email stops too
    assert sent["C1"] == ("cancelled", "opted_out_before_send")


def test_the_one_click_mail_post_keeps_its_channel_scope(web):
    token = unsubscribe.unsubscribe_url(web.settings, "C1", "email").rsplit("/", 1)[1]
    done = web.client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
    assert scopes(web.engine, "C1") == [("email", "opt_out", "customer")]
    assert 'name="everything"' in done.text  # and the page it answers offers the one step


def test_every_call_script_offers_to_stop_all_marketing():
    from pathlib import Path

    def expanded(path: Path) -> str:  # the script with its shared pieces ({% include %}) in place
        return re.sub(
            r'{%\s*include\s+"([^"]+)"\s*%}',
            lambda m: expanded(Path("templates") / m.group(1)),
            path.read_text(),
        )

    scripts = sorted(p for p in Path("templates/call").glob("*.txt.j2") if not p.name.startswith("_"))
    assert scripts
    for script in scripts:
        text = expanded(script)
        offered = ("helemaal geen aanbiedingen" in text) or ("no more offers from us at all" in text)
        assert offered, script.name
