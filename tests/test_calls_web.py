"""The call-centre pages over HTTP (Starlette's test client): sessions, CSRF, who sees what."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from outreach.calls import tasks
from outreach.calls.models import CallTask
from outreach.db import engine_for, make_engine, session_scope
from tests.calls_support import (  # noqa: F401 (cheap_hashing is a fixture)
    CSRF_RE,
    OFFERS,
    PASSWORD,
    TUESDAY,
    Person,
    add_team_and_agents,
    call_day,
    cheap_hashing,
    make_app,
)

TEN = datetime(2026, 11, 24, 10, tzinfo=UTC)

pytestmark = pytest.mark.usefixtures("cheap_hashing")


@pytest.fixture
def site(db_url, monkeypatch):
    monkeypatch.setenv("OUTREACH_SESSION_SECRET", "test-secret-for-the-call-centre")
    engine = make_engine(db_url)
    add_team_and_agents(engine, "nl-1", "nl", 10, ["jan", "piet"], supervisor="sup")
    add_team_and_agents(engine, "en-1", "en", 10, ["joe"])
    call_day(
        engine, TUESDAY, [Person("C1", first_name="Anna", last_name="de Vries"), Person("E1", language="en")]
    )
    tasks.create_tasks(engine, TUESDAY, offers=OFFERS)
    yield make_app(db_url, clock=lambda: TEN), engine
    engine.dispose()
    engine_for(db_url).dispose()


def _csrf(html: str) -> str:
    return re.search(CSRF_RE, html).group(1)


def sign_in(app, username: str) -> TestClient:
    client = TestClient(app)
    page = client.get("/calls/login")
    response = client.post(
        "/calls/login",
        data={"username": username, "password": PASSWORD, "csrf_token": _csrf(page.text)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return client


def take_next(client: TestClient) -> int:
    home = client.get("/calls")
    response = client.post("/calls/next", data={"csrf_token": _csrf(home.text)}, follow_redirects=False)
    match = re.fullmatch(r"/calls/tasks/(\d+)", response.headers["location"])
    assert match, response.headers["location"]
    return int(match.group(1))


def test_session_cookie_is_httponly_samesite_and_signed(site):
    app, _ = site
    client = TestClient(app)
    page = client.get("/calls/login")
    cookie = page.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/calls" in cookie
    assert page.headers["cache-control"] == "no-store"
    client.post(
        "/calls/login", data={"username": "jan", "password": PASSWORD, "csrf_token": _csrf(page.text)}
    )
    assert client.get("/calls", follow_redirects=False).status_code == 200
    # a forged or altered cookie is no session
    value = client.cookies.get("outreach_callcentre")
    client.cookies.set(
        "outreach_callcentre", value[:-2] + ("AA" if value[-2:] != "AA" else "BB"), path="/calls"
    )
    assert client.get("/calls", follow_redirects=False).headers["location"] == "/calls/login"


def test_wrong_password_and_missing_csrf_do_not_sign_in(site):
    app, _ = site
    client = TestClient(app)
    page = client.get("/calls/login")
    bad = client.post(
        "/calls/login", data={"username": "jan", "password": "nope nope nope", "csrf_token": _csrf(page.text)}
    )
    assert bad.status_code == 401 and "wrong password" in bad.text
    no_token = client.post(
        "/calls/login", data={"username": "jan", "password": PASSWORD}, follow_redirects=False
    )
    assert no_token.headers["location"].startswith("/calls/login?notice=csrf")
    assert client.get("/calls", follow_redirects=False).headers["location"] == "/calls/login"


def test_a_locked_account_is_refused_like_any_wrong_password(site):
    from outreach.calls import accounts

    app, _ = site
    client = TestClient(app)

    def attempt(username: str, password: str):
        page = client.get("/calls/login")
        return client.post(
            "/calls/login",
            data={"username": username, "password": password, "csrf_token": _csrf(page.text)},
            follow_redirects=False,
        )

    for _ in range(accounts.MAX_FAILED_LOGINS):
        assert attempt("jan", "nope nope nope").status_code == 401
    locked = attempt("jan", PASSWORD)  # the right password, on a locked account
    unknown = attempt("nobody", PASSWORD)
    assert locked.status_code == unknown.status_code == 401
    assert re.sub(CSRF_RE, "", locked.text) == re.sub(CSRF_RE, "", unknown.text)  # nothing tells them apart
    assert "locked for 15 minutes" in locked.text
    assert attempt("piet", PASSWORD).status_code == 303  # other accounts are not affected


def test_forms_without_the_csrf_token_change_nothing(site):
    app, engine = site
    client = sign_in(app, "jan")
    response = client.post("/calls/next", data={"csrf_token": "forged"}, follow_redirects=False)
    assert "notice=csrf" in response.headers["location"]
    with session_scope(engine) as session:
        assert session.scalar(select(CallTask.id).where(CallTask.status == "claimed")) is None
    task_id = take_next(client)
    response = client.post(
        f"/calls/tasks/{task_id}/outcome", data={"outcome": "interested"}, follow_redirects=False
    )
    assert "notice=csrf" in response.headers["location"]
    with session_scope(engine) as session:
        assert session.get(CallTask, task_id).status == "claimed"


def test_the_call_page_shows_what_the_call_needs_and_no_more(site):
    app, _ = site
    client = sign_in(app, "jan")
    task_id = take_next(client)
    page = client.get(f"/calls/tasks/{task_id}")
    assert page.status_code == 200
    text = page.text
    assert "Anna de Vries" in text and "+316" in text
    assert "Goedendag, u spreekt met jan van Voorbeeldbank." in text
    assert "bezwaar" in text  # the script ends with the right to object
    assert "has a large balance on the current account" in text
    for never in ("c1@example.org", ">C1<", "IBAN", "birth"):
        assert never not in text


def test_other_teams_and_other_agents_cannot_see_a_call(site):
    app, _ = site
    jan = sign_in(app, "jan")
    task_id = take_next(jan)
    joe = sign_in(app, "joe")  # English team
    assert joe.get(f"/calls/tasks/{task_id}").status_code == 404
    assert "Anna" not in joe.get("/calls").text
    piet = sign_in(app, "piet")  # same team, not his call
    assert piet.get(f"/calls/tasks/{task_id}").status_code == 403
    sup = sign_in(app, "sup")  # the supervisor may look, read only
    page = sup.get(f"/calls/tasks/{task_id}")
    assert page.status_code == 200 and "read only" in page.text and "Record" not in page.text
    stolen = piet.post(
        f"/calls/tasks/{task_id}/outcome",
        data={"outcome": "do_not_contact:all", "csrf_token": _csrf(piet.get("/calls").text)},
        follow_redirects=False,
    )
    assert "notice=gone" in stolen.headers["location"]


def test_sign_out_ends_the_session_even_for_a_copied_cookie(site):
    app, _ = site
    client = sign_in(app, "jan")
    copied = client.cookies.get("outreach_callcentre")
    client.post("/calls/logout", data={"csrf_token": _csrf(client.get("/calls").text)})
    other = TestClient(app)
    other.cookies.set("outreach_callcentre", copied, path="/calls")
    assert other.get("/calls", follow_redirects=False).headers["location"] == "/calls/login"


def test_supervisor_page_for_supervisors_only(site):
    app, _ = site
    jan = sign_in(app, "jan")
    task_id = take_next(jan)
    jan.post(
        f"/calls/tasks/{task_id}/outcome",
        data={"outcome": "interested", "csrf_token": _csrf(jan.get("/calls").text)},
    )
    assert jan.get("/calls/supervisor").status_code == 403
    page = sign_in(app, "sup").get("/calls/supervisor?day=2026-11-24")
    assert page.status_code == 200
    assert "<svg" in page.text and "Calls per agent by outcome" in page.text
    row = re.search(r'<tr data-agent="jan">(.*?)</tr>', page.text, re.S).group(1)
    assert [int(n) for n in re.findall(r">(\d+)<", row)] == [0, 1, 0, 1, 1, 0, 0, 0, 0]
