"""E-mailed objections through SendGrid Inbound Parse, over the real app: one certain match is
applied and confirmed, anything else waits for review; the secret URL guards the route."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from outreach import ledger
from outreach.channel_setup import open_channel
from outreach.cli import app as cli_app
from outreach.config import Settings, get_settings, load_offers
from outreach.db import session_scope
from outreach.dispatch import Dispatcher
from outreach.models import ConsentEvent, Message, ObjectionMail
from outreach.planning import decide_day
from outreach.web.app import create_app
from tests.factories import add_candidates, add_customers, customer
from tests.fixture_files import OFFERS_FILE
from tests.test_consent_api import DAY, NOON

SECRET = "inbound-secret-for-tests-0123456789"
URL = f"/inbound/sendgrid/{SECRET}"


def sendgrid_form(sender: str, *, spf="pass", dkim=None, message_id="<m1@mail.example.nl>") -> dict:
    domain = sender.rpartition("@")[2].rstrip(">")
    return {
        "headers": f"Received: by mx.sendgrid.net\nMessage-ID: {message_id}\nSubject: Afmelden\n",
        "from": f"Anne de Vries <{sender}>",
        "to": "bezwaar@bank.example",
        "subject": "Afmelden",
        "text": "Ik wil geen aanbiedingen meer.",
        "SPF": spf,
        "dkim": dkim if dkim is not None else f"{{@{domain} : pass}}",
        "sender_ip": "192.0.2.1",
        "envelope": f'{{"to":["bezwaar@bank.example"],"from":"{sender}"}}',
        "charsets": '{"to":"UTF-8","from":"UTF-8","subject":"UTF-8","text":"UTF-8"}',
        "attachments": "1",
    }


@pytest.fixture
def web(db_url, engine, tmp_path):
    add_customers(
        engine,
        customer("C1", email="anne@mail.example.nl"),
        customer("C2", email="shared@mail.example.nl"),
        customer("C3", email="Shared@mail.example.nl"),
        customer("C4", email="en@mail.example.nl", language="en"),
    )
    settings = Settings(
        database_url=db_url,
        outbox_dir=tmp_path / "outbox",
        consent={"inbound_parse_secret": SECRET},
    )
    client = TestClient(create_app(settings))
    yield client
    client.close()
    if getattr(client.app.state, "engine", None) is not None:
        client.app.state.engine.dispose()


def post(client, form: dict, url: str = URL):
    # as SendGrid posts it: multipart/form-data, attachments as file parts
    return client.post(url, data=form, files={"attachment1": ("brief.txt", b"bezwaar", "text/plain")})


def consent_rows(engine) -> list[tuple]:
    with session_scope(engine) as session:
        rows = session.execute(
            select(ConsentEvent.customer_id, ConsentEvent.scope, ConsentEvent.choice, ConsentEvent.actor_kind)
        )
        return sorted(tuple(r) for r in rows)


def test_one_matching_sender_objects_to_all_marketing_and_gets_a_confirmation(web, engine, tmp_path):
    records: list[logging.LogRecord] = []
    catcher = logging.Handler(logging.INFO)
    catcher.emit = records.append
    watched = logging.getLogger("outreach")
    watched.addHandler(catcher)
    level, watched.level = watched.level, logging.INFO
    response = post(web, sendgrid_form("ANNE@mail.example.nl"))
    assert response.status_code == 200 and response.json() == {"status": "applied", "reason": "matched"}
    assert consent_rows(engine) == [("C1", "all", "opt_out", "inbound_mail")]
    replies = list((tmp_path / "outbox").glob("*/email/objection-*.eml"))
    assert len(replies) == 1
    text = replies[0].read_text()
    assert "To: anne@mail.example.nl" in text and "Bevestiging" in text
    again = post(web, sendgrid_form("anne@mail.example.nl"))  # SendGrid re-posts after a timeout
    assert again.json()["reason"] == "duplicate" and len(consent_rows(engine)) == 1
    with session_scope(engine) as session:
        assert session.scalars(select(ObjectionMail.reply)).all() == ["sent"]
    watched.removeHandler(catcher)
    watched.level = level
    logged = "\n".join(r.getMessage() for r in records)
    assert "objection mail" in logged and "anne" not in logged.lower() and "Afmelden" not in logged


def test_access_log_lines_do_not_carry_the_secret_or_codes():
    from outreach.pii import scrub

    line = (
        f'127.0.0.1 - "POST /inbound/sendgrid/{SECRET} HTTP/1.1" 200; GET /p/eho2l6nicgrdg6y2tysjgn5u?lang=en'
    )
    assert scrub(line) == '127.0.0.1 - "POST /inbound/sendgrid/*** HTTP/1.1" 200; GET /p/***?lang=en'


def test_reply_is_in_the_customers_language(web, tmp_path):
    post(web, sendgrid_form("en@mail.example.nl", message_id="<en@x>"))
    (reply,) = (tmp_path / "outbox").glob("*/email/objection-*.eml")
    assert "Confirmation: you will receive no more offers" in reply.read_text()


@pytest.mark.parametrize(
    ("form", "reason"),
    [
        (sendgrid_form("nobody@mail.example.nl"), "no_match"),
        (sendgrid_form("shared@mail.example.nl"), "several_matches"),
        (sendgrid_form("anne@mail.example.nl", spf="softfail"), "spf_failed"),
        (sendgrid_form("anne@mail.example.nl", dkim="{@attacker.example : pass}"), "dkim_failed"),
        (sendgrid_form("anne@mail.example.nl", dkim="{@mail.example.nl : fail}"), "dkim_failed"),
        (sendgrid_form("not an address"), "no_sender"),
    ],
)
def test_uncertain_mails_wait_for_review_and_change_nothing(web, engine, tmp_path, form, reason):
    response = post(web, form)
    assert response.status_code == 200 and response.json() == {"status": "review", "reason": reason}
    assert consent_rows(engine) == []
    assert list((tmp_path / "outbox").glob("*/email/*.eml")) == []


def test_a_reviewer_applies_or_dismisses_from_the_command_line(web, engine, db_url, monkeypatch):
    post(web, sendgrid_form("shared@mail.example.nl", message_id="<a@x>"))
    post(web, sendgrid_form("spam@elsewhere.example", message_id="<b@x>"))
    monkeypatch.setenv("OUTREACH_DATABASE_URL", db_url)
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        listed = runner.invoke(cli_app, ["objections", "review"], env={"COLUMNS": "200"}).stdout
        assert "shared@mail.example.nl" in listed and "several customers share" in listed
        with session_scope(engine) as session:
            first, second = session.scalars(select(ObjectionMail.id).order_by(ObjectionMail.id)).all()
        assert runner.invoke(cli_app, ["objections", "apply", str(first), "C3"]).exit_code == 0
        assert runner.invoke(cli_app, ["objections", "dismiss", str(second)]).exit_code == 0
        assert consent_rows(engine) == [("C3", "all", "opt_out", "inbound_mail")]
        again = runner.invoke(cli_app, ["objections", "apply", str(first), "C2"])
        assert again.exit_code == 2 and "waiting for review" in again.output
        assert "(0)" in runner.invoke(cli_app, ["objections", "review"]).stdout
    finally:
        get_settings.cache_clear()


def test_wrong_or_missing_secret_is_refused(web, engine, db_url):
    assert post(web, sendgrid_form("anne@mail.example.nl"), url="/inbound/sendgrid/guess").status_code == 403
    unset = TestClient(create_app(Settings(database_url=db_url)))
    assert post(unset, sendgrid_form("anne@mail.example.nl")).status_code == 404
    assert consent_rows(engine) == []


def test_a_mailed_objection_cancels_the_days_planned_message_before_it_is_sent(web, engine, tmp_path):
    add_candidates(engine, DAY, ("C1", "KIDS_SAVINGS"), ("C4", "KIDS_SAVINGS"))
    decide_day(engine, DAY, load_offers(OFFERS_FILE), now=NOON)
    assert post(web, sendgrid_form("anne@mail.example.nl")).json()["status"] == "applied"
    settings = Settings(database_url=str(engine.url), outbox_dir=tmp_path / "outbox")
    dispatcher = Dispatcher(
        engine, settings, load_offers(OFFERS_FILE), open_channel(settings, "email"), "w1"
    )
    with session_scope(engine) as session:
        due = ledger.due_ids(session, DAY, "email", NOON)
    report = dispatcher.send_ids(due)
    assert (report.sent, report.cancelled) == (1, 1)
    with session_scope(engine) as session:
        c1 = session.scalars(select(Message).where(Message.customer_id == "C1")).one()
    assert (c1.status, c1.last_error_code) == ("cancelled", "opted_out_before_send")
