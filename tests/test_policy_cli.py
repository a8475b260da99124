"""The people's tools: optout / optin / consent, preview (a dry run) and explain, on both databases."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from outreach import ledger
from outreach.cli import app
from outreach.config import get_settings, load_offers
from outreach.db import session_scope
from outreach.models import ConsentEvent, Decision, Message
from outreach.planning import decide_day
from tests.factories import add_candidates, add_consent, add_customers, add_suppression, customer
from tests.fixture_files import OFFERS_FILE

REPO = Path(__file__).resolve().parent.parent
DAY = date(2026, 11, 18)
NOON = datetime(2026, 11, 18, 11, 0, tzinfo=UTC)


@pytest.fixture
def cli(engine, monkeypatch):
    monkeypatch.setenv("OUTREACH_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("OUTREACH_OFFERS_FILE", str(OFFERS_FILE))
    monkeypatch.setenv("OUTREACH_TEMPLATES_DIR", str(REPO / "templates"))
    get_settings.cache_clear()
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == 0, (result.output, result.exception)
        return result.output

    run.runner = runner
    yield run
    get_settings.cache_clear()


def test_optout_optin_and_consent_show_state_and_history(engine, cli):
    add_customers(engine, customer("C1"))
    out = cli("optout", "C1", "--scope", "sms", "--source", "phone")
    assert "opted out of sms" in out
    cli("optout", "C1", "--scope", "topic:credit", "--source", "web")
    cli("optin", "C1", "--scope", "sms", "--source", "branch")
    cli("optout", "C1", "--source", "letter")  # default scope: all
    data = json.loads(cli("consent", "C1", "--format", "json"))
    current = {row["scope"]: row for row in data["current"]}
    assert current["all"]["choice"] == "opt_out" and current["all"]["source"] == "letter"
    assert current["sms"]["choice"] == "opt_in"
    assert current["sms"]["effect"] == "blocked: global opt-out wins"
    assert current["topic:credit"]["choice"] == "opt_out"
    assert current["email"]["choice"] is None
    assert [(h["scope"], h["choice"], h["source"]) for h in data["history"]] == [
        ("sms", "opt_out", "phone"),
        ("topic:credit", "opt_out", "web"),
        ("sms", "opt_in", "branch"),
        ("all", "opt_out", "letter"),
    ]
    table = cli("consent", "C1")
    assert "History (4 events" in table and "branch" in table


def test_consent_commands_refuse_bad_input(engine, cli):
    add_customers(engine, customer("C1"))
    bad_scope = cli.runner.invoke(app, ["optout", "C1", "--scope", "fax", "--source", "x"])
    assert bad_scope.exit_code == 2 and "unknown consent scope" in bad_scope.output
    unknown = cli.runner.invoke(app, ["optout", "NOPE", "--source", "x"])
    assert unknown.exit_code == 2 and "unknown customer NOPE" in unknown.output
    missing_source = cli.runner.invoke(app, ["optout", "C1"])
    assert missing_source.exit_code != 0
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(ConsentEvent)) == 0


def _day(engine):
    add_customers(
        engine,
        customer("P1", mobile="+31612345678", email="p1.person@example.nl"),
        customer("P2", email_valid=False, mobile="+31687654321"),
        customer("OUT"),
        customer("SUPP"),
    )
    add_consent(engine, "OUT", "all")
    add_suppression(engine, "SUPP", "vulnerable", date(2026, 1, 1))
    add_candidates(
        engine,
        DAY,
        ("P1", "KIDS_SAVINGS", 0.9),
        ("P1", "CREDIT_CARD", 0.9),
        ("P2", "TRAVEL_INSURANCE"),
        ("OUT", "KIDS_SAVINGS"),
        ("SUPP", "KIDS_SAVINGS"),
    )


def test_preview_is_a_dry_run_with_funnel_counts_and_masked_samples(engine, cli):
    _day(engine)
    data = json.loads(cli("preview", "--date", DAY.isoformat(), "--format", "json", "--at", NOON.isoformat()))
    funnel = data["funnel"]
    assert funnel["candidates"] == 5
    assert funnel["rejected"] + funnel["not_eligible"] + funnel["eligible"] == 5
    assert (
        funnel["eligible"]
        == funnel["lost_arbitration"] + funnel["over_capacity"] + funnel["planned"] + funnel["held"]
    )
    assert data["reasons"] == {
        "planned": 2,
        "lost_arbitration": 1,
        "opted_out_global": 1,
        "suppressed_vulnerable": 1,
    }
    assert data["offers"]["KIDS_SAVINGS"]["planned"] == 1 and data["offers"]["KIDS_SAVINGS"]["via email"] == 1
    assert data["channels"]["call"]["capacity"] == 150
    samples = {s["channel"]: s for s in data["samples"]}
    assert set(samples) == {"email", "sms"}
    assert samples["email"]["to"] == "p***@example.nl" and "Beste Anne" in samples["email"]["body"]
    assert samples["sms"]["to"].startswith("+316") and "87654321" not in json.dumps(data)
    assert "p1.person@example.nl" not in json.dumps(data)
    # nothing was written: no decisions, no ledger rows
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(Decision)) == 0
        assert session.scalar(select(func.count()).select_from(Message)) == 0
    text = cli("preview", "--date", DAY.isoformat(), "--at", NOON.isoformat())
    assert "nothing was written or sent" in text and "suppressed_vulnerable" in text and "Per channel" in text


def test_preview_of_a_day_already_run_shows_the_same_plan(engine, cli):
    _day(engine)
    decide_day(engine, DAY, load_offers(OFFERS_FILE), now=NOON)
    data = json.loads(cli("preview", "--date", DAY.isoformat(), "--format", "json", "--at", NOON.isoformat()))
    assert data["reasons"]["planned"] == 2  # today's own ledger rows are not counted against today


def test_explain_tells_the_story_of_each_candidate(engine, cli):
    _day(engine)
    offers = load_offers(OFFERS_FILE)
    decide_day(engine, DAY, offers, now=NOON)
    with session_scope(engine) as session:
        mid = session.scalar(select(Message.id).where(Message.customer_id == "P1"))
        ledger.transition(session, [mid], "cancelled", detail="consent withdrawn before send")
    data = json.loads(cli("explain", "P1", "--date", DAY.isoformat(), "--format", "json"))
    by_offer = {c["offer_code"]: c for c in data["candidates"]}
    kids, card = by_offer["KIDS_SAVINGS"], by_offer["CREDIT_CARD"]
    assert (kids["outcome"], kids["channel"], kids["legal_basis"]) == (
        "planned",
        "email",
        "legitimate_interest",
    )
    assert all(r["verdict"] == "passed" for r in kids["rules"])
    assert card["reason"] == "lost_arbitration"
    verdicts = [r["verdict"] for r in card["rules"]]
    assert verdicts.index("failed") == [r["code"] for r in card["rules"]].index("lost_arbitration")
    assert verdicts[verdicts.index("failed") + 1 :] == ["not reached", "not reached"]
    assert "KIDS_SAVINGS (4.5)" in card["rules"][verdicts.index("failed")]["facts"]
    assert data["messages"][0]["status"] == "cancelled"
    assert any("planned → cancelled" in t for t in data["messages"][0]["transitions"])
    text = cli("explain", "P1", "--date", DAY.isoformat())
    assert "Legal basis: legitimate interest" in text and "✗ Is this the customer's best-ranked" in text
    out = json.loads(cli("explain", "OUT", "--date", DAY.isoformat(), "--format", "json"))
    rule = next(r for r in out["candidates"][0]["rules"] if r["code"] == "opted_out_global")
    assert rule["verdict"] == "failed" and "opted out of it on 2026-01-01" in rule["facts"]
    none = cli.runner.invoke(app, ["explain", "NOBODY", "--date", DAY.isoformat()])
    assert none.exit_code == 1 and "no customer 'NOBODY' in the customer table" in none.output


def test_explain_notes_when_data_changed_after_the_decision(engine, cli):
    _day(engine)
    decide_day(engine, DAY, load_offers(OFFERS_FILE), now=NOON)
    # a suppression back-dated after the decision was taken
    add_suppression(engine, "P2", "deceased", DAY - timedelta(days=30))
    data = json.loads(cli("explain", "P2", "--date", DAY.isoformat(), "--format", "json"))
    cand = data["candidates"][0]
    assert cand["outcome"] == "planned"  # the record stands
    assert (
        cand["note"]
        and "suppressed_deceased" in cand["note"]
        and "the recorded decision stands" in cand["note"]
    )
