"""Who changed a customer's consent: every path records its actor, source and request id, and
``outreach consent CUSTOMER`` shows them."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from outreach import consent, unsubscribe
from outreach.cli import app
from outreach.config import get_settings
from outreach.db import make_engine, session_scope
from outreach.importer import import_file
from outreach.models import ConsentEvent
from tests.factories import add_customers, customer
from tests.fixture_files import OFFERS_FILE
from tests.webhook_kit import close_web, make_web

runner = CliRunner()
REPO_OFFERS = OFFERS_FILE


def actors(engine, customer_id: str) -> list[tuple]:
    with session_scope(engine) as session:
        rows = session.execute(
            select(ConsentEvent.scope, ConsentEvent.actor_kind, ConsentEvent.actor, ConsentEvent.request_id)
            .where(ConsentEvent.customer_id == customer_id)
            .order_by(ConsentEvent.id)
        )
        return [tuple(r) for r in rows]


@pytest.fixture
def cli(sqlite_url, monkeypatch):
    monkeypatch.setenv("OUTREACH_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("OUTREACH_OFFERS_FILE", str(REPO_OFFERS))
    monkeypatch.setenv("USER", "ops-jan")
    monkeypatch.setenv("LOGNAME", "ops-jan")
    get_settings.cache_clear()
    engine = make_engine(sqlite_url)
    add_customers(engine, customer("C1"))
    yield engine, lambda *args: runner.invoke(app, list(args), env={"COLUMNS": "220"})
    engine.dispose()
    get_settings.cache_clear()


def test_cli_change_names_the_operator_and_consent_shows_every_actor(cli):
    engine, run = cli
    assert run("optout", "C1", "--scope", "email", "--source", "phone").exit_code == 0
    with session_scope(engine) as session:  # as the API would record it
        actor = consent.Actor("api_client", "online-banking", "req-42")
        consent.record(session, "C1", "all", "opt_out", "online_banking", actor=actor)
    assert actors(engine, "C1") == [
        ("email", "cli", "ops-jan", None),
        ("all", "api_client", "online-banking", "req-42"),
    ]
    shown = json.loads(run("consent", "C1", "--format", "json").stdout)
    assert [(h["actor_kind"], h["actor"], h["request_id"]) for h in shown["history"]] == [
        ("cli", "ops-jan", None),
        ("api_client", "online-banking", "req-42"),
    ]
    current = {row["scope"]: row["by"] for row in shown["current"]}
    assert current["all"] == "api_client: online-banking" and current["email"] == "cli: ops-jan"
    table = run("consent", "C1").stdout
    assert "api_client: online-banking" in table and "req-42" in table and "cli: ops-jan" in table


def test_an_imported_consent_names_its_file_and_row(engine, tmp_path):
    path = tmp_path / "consents_20261118.csv"
    path.write_text(
        "customer_id,scope,choice,source,recorded_at\n"
        "C1,email,opt_out,branch,2026-11-17T09:00:00Z\n"
        "C2,all,opt_out,branch,2026-11-17T09:05:00Z\n"
    )
    report = import_file(engine, "consents", path)
    assert actors(engine, "C2") == [("all", "import", "consents_20261118.csv:3", report.batch_id)]
    assert actors(engine, "C1")[0][2] == "consents_20261118.csv:2"


def test_the_unsubscribe_page_records_the_customer_and_the_request_id(db_url, engine):
    web = make_web(db_url, engine)
    try:
        token = unsubscribe.unsubscribe_url(web.settings, "C7", "sms").rsplit("/", 1)[1]
        web.client.post(f"/unsubscribe/{token}", data={"confirm": "yes"}, headers={"X-Request-ID": "r-1"})
    finally:
        close_web(web)
    assert actors(engine, "C7") == [("sms", "customer", "unsubscribe-page", "r-1")]


def test_an_unknown_actor_kind_is_refused():
    with pytest.raises(consent.ConsentError, match="actor kind"):
        consent.Actor("martian", "x")
