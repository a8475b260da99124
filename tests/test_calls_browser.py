"""The call-centre pages in headless Debian Chromium against a real uvicorn on a loopback port."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from outreach import consent
from outreach.calls import tasks
from outreach.calls.models import CallLead, CallTask
from outreach.db import engine_for, make_engine, session_scope
from outreach.models import Customer, Decision, Message
from outreach.planning import decide_day
from tests.calls_support import (  # noqa: F401 (cheap_hashing is a fixture)
    OFFERS,
    PASSWORD,
    TUESDAY,
    LiveServer,
    Person,
    add_customers,
    add_team_and_agents,
    add_transaction,
    cheap_hashing,
    dispatch_calls,
    make_app,
    plan_day,
)
from tests.factories import add_candidates

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.usefixtures("cheap_hashing")]
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TEN = datetime(2026, 11, 24, 10, tzinfo=UTC)  # Tuesday, 11:00 in Amsterdam
# best first: the agent meets them in this order and records these outcomes
SCENARIO = [
    (
        Person(
            "C_INT",
            first_name="Ilse",
            last_name="Jansen",
            offer_code="KIDS_SAVINGS",
            trigger="child_benefit",
            trigger_ref="svb-2",
        ),
        "Interested",
    ),
    (Person("C_NOT", first_name="Noah", last_name="Visser", score=0.8), "Not interested"),
    (Person("C_NOA", first_name="Nina", last_name="Smit", score=0.7), "No answer"),
    (Person("C_WRONG", first_name="Willem", last_name="Mulder", score=0.6), "Wrong number"),
    (Person("C_ALL", first_name="Anouk", last_name="Bos", score=0.5), "No marketing at all"),
    (Person("C_PHONE", first_name="Pieter", last_name="Dekker", score=0.4), "Do not call me again"),
]


def _ensure_chromium() -> None:
    """Install Debian's chromium if it is missing (CI on a fresh machine); skip only if that fails."""
    if os.path.exists(CHROMIUM):
        return
    if shutil.which("apt-get") and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
        if subprocess.run(install, capture_output=True, env=env, check=False).returncode != 0:
            subprocess.run(["apt-get", "update"], capture_output=True, env=env, check=False)
            subprocess.run(install, capture_output=True, env=env, check=False)
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing and `apt-get install chromium` was not possible here")


@pytest.fixture(scope="module")
def browser():
    _ensure_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def shots(tmp_path) -> Path:
    """Screenshots go to OUTREACH_SCREENSHOTS (to look at them) or the test's temporary folder."""
    folder = Path(os.environ.get("OUTREACH_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def live(sqlite_url, monkeypatch):
    monkeypatch.setenv("OUTREACH_SESSION_SECRET", "browser-test-secret")
    engine = make_engine(sqlite_url)
    add_team_and_agents(engine, "nl-1", "nl", 20, ["jan"], supervisor="sup")
    add_team_and_agents(engine, "en-1", "en", 20, ["joe"])
    add_customers(engine, [person for person, _ in SCENARIO])
    for n, month in enumerate((6, 9), start=1):  # child benefit from the SVB since June
        add_transaction(
            engine,
            f"svb-{n}",
            "C_INT",
            datetime(2026, month, 1, tzinfo=UTC),
            amount=270,
            counterparty_name="SVB",
        )
    plan_day(engine, TUESDAY, [person for person, _ in SCENARIO])
    dispatch_calls(engine, TUESDAY)
    # the customer who will say "no marketing at all" also has an email due later today
    plan_day(engine, TUESDAY, [Person("C_ALL", offer_code="SAVINGS_BOOST")], channel="email")
    assert tasks.create_tasks(engine, TUESDAY, offers=OFFERS) == len(SCENARIO)
    with LiveServer(make_app(sqlite_url, clock=lambda: TEN)) as server:
        yield server.url, engine
    engine.dispose()
    engine_for(sqlite_url).dispose()


def sign_in(browser, url: str, username: str):
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    page.goto(f"{url}/calls")
    assert page.url.endswith("/calls/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button:has-text('Sign in')")
    page.wait_for_url(f"{url}/calls")
    return page


def test_an_agents_day_in_the_browser(browser, live, shots):
    url, engine = live
    page = sign_in(browser, url, "jan")
    assert page.get_by_test_id("count-open").inner_text() == str(len(SCENARIO))
    cookie = next(c for c in page.context.cookies() if c["name"] == "outreach_callcentre")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    page.screenshot(path=shots / "01-home.png", full_page=True)

    task_ids = []
    for n, (person, button) in enumerate(SCENARIO, start=1):
        page.click("button:has-text('Next call')")
        page.wait_for_url(f"{url}/calls/tasks/*")
        task_ids.append(int(page.url.rsplit("/", 1)[1]))
        assert page.get_by_test_id("name").inner_text() == f"{person.first_name} {person.last_name}"
        script = page.get_by_test_id("script").inner_text()
        assert script.startswith("Goedendag, u spreekt met jan van Voorbeeldbank.")
        if person.trigger == "child_benefit":
            assert page.get_by_test_id("why").inner_text() == "receives child benefit since June 2026"
        assert "bezwaar" in script
        assert "example.org" not in page.content()  # no email address on the call page
        if n == 1:
            page.screenshot(path=shots / "02-call.png", full_page=True)
        page.click(f"button:has-text('{button}')")
        page.wait_for_url(f"{url}/calls?notice=*")
        expected = "goes back in the queue" if button == "No answer" else "Outcome recorded."
        assert expected in page.locator(".notice").inner_text()

    # the unanswered call waits for its retry at 12:00; nothing else is callable now
    page.click("button:has-text('Next call')")
    page.wait_for_url(f"{url}/calls?notice=none")
    assert "(retry)" in page.get_by_test_id("queue").inner_text()
    assert page.get_by_test_id("my-calls").locator("tr").count() == len(SCENARIO) + 1
    page.screenshot(path=shots / "03-after.png", full_page=True)

    with session_scope(engine) as session:
        outcome = dict(session.execute(select(CallTask.customer_id, CallTask.outcome)).all())
        status = dict(session.execute(select(CallTask.customer_id, CallTask.status)).all())
        assert status == {
            "C_INT": "done",
            "C_NOT": "done",
            "C_NOA": "open",
            "C_WRONG": "done",
            "C_ALL": "done",
            "C_PHONE": "done",
        }
        assert outcome["C_ALL"] == outcome["C_PHONE"] == "do_not_contact"
        assert session.scalar(select(CallLead.customer_id)) == "C_INT"
        assert session.get(Customer, "C_WRONG").mobile_valid is False
        # the objections hold at once: consent says no, and the email due today is cancelled
        assert not consent.current(session, "C_ALL").allows("email")
        assert not consent.current(session, "C_ALL").allows("phone")
        assert not consent.current(session, "C_PHONE").allows("phone")
        assert consent.current(session, "C_PHONE").allows("email")
        assert consent.latest_opted_out(session, ["C_ALL", "C_PHONE", "C_INT"], {"all", "phone"}) == {
            "C_ALL",
            "C_PHONE",
        }
        email = session.scalar(select(Message).where(Message.channel == "email"))
        assert (email.customer_id, email.status) == ("C_ALL", "cancelled")
        call_status = dict(
            session.execute(
                select(Message.customer_id, Message.status).where(Message.channel == "call")
            ).all()
        )
        assert call_status == {
            "C_INT": "delivered",
            "C_NOT": "delivered",
            "C_NOA": "sent",
            "C_WRONG": "bounced",
            "C_ALL": "delivered",
            "C_PHONE": "delivered",
        }

    # and tomorrow's plan leaves out the customer who wants no marketing at all
    tomorrow = date(2026, 11, 25)
    add_candidates(engine, tomorrow, ("C_ALL", "SAVINGS_BOOST"))
    decide_day(engine, tomorrow, OFFERS, now=datetime(2026, 11, 25, 9, tzinfo=UTC))
    with session_scope(engine) as session:
        decision = session.scalar(select(Decision).where(Decision.decision_date == tomorrow))
        assert (decision.customer_id, decision.outcome, decision.reason) == (
            "C_ALL",
            "suppressed",
            "opted_out_global",
        )

    # another team's agent sees none of it, not even by typing the address
    other = sign_in(browser, url, "joe")
    assert other.get_by_test_id("count-open").inner_text() == "0"
    assert "Ilse" not in other.content()
    response = other.goto(f"{url}/calls/tasks/{task_ids[0]}")
    assert response.status == 404
    assert "Ilse" not in other.content() and "No such call." in other.content()
    other.screenshot(path=shots / "04-other-team.png", full_page=True)

    # the supervisor's view of the day
    sup = sign_in(browser, url, "sup")
    sup.click("text=Team progress")
    sup.wait_for_url(f"{url}/calls/supervisor")
    assert sup.get_by_test_id("team-done").inner_text() == "5"
    assert sup.get_by_test_id("team-open").inner_text() == "1"
    assert sup.locator("svg").count() == 2
    jan_row = sup.locator("tr[data-agent='jan'] td").all_inner_texts()
    assert jan_row[:5] == ["jan", "0", "5", "0", "6"]
    sup.screenshot(path=shots / "05-supervisor.png", full_page=True)

    # signing out ends the session
    page.click("button:has-text('Sign out')")
    page.wait_for_url(f"{url}/calls/login?notice=signed-out")
    page.goto(f"{url}/calls")
    assert page.url.endswith("/calls/login")
