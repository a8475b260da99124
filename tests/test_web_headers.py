"""Every HTML page the service sends carries CSP (never framed), nosniff and a referrer policy."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from outreach import unsubscribe
from outreach.calls import tasks
from outreach.config import Settings
from outreach.db import engine_for, make_engine
from outreach.web.app import create_app
from tests.calls_support import (  # noqa: F401 (cheap_hashing is a fixture)
    CSRF_RE,
    OFFERS,
    PASSWORD,
    REPO,
    TUESDAY,
    Person,
    add_team_and_agents,
    call_day,
    cheap_hashing,
)
from tests.fixture_files import OFFERS_FILE
from tests.webhook_kit import PUBLIC_URL, UNSUBSCRIBE_SECRET

pytestmark = pytest.mark.usefixtures("cheap_hashing")


@pytest.fixture
def app(sqlite_url, monkeypatch):
    monkeypatch.setenv("OUTREACH_SESSION_SECRET", "test-secret-for-the-headers")
    engine = make_engine(sqlite_url)
    add_team_and_agents(engine, "nl-1", "nl", 10, ["jan"], supervisor="sup")
    call_day(engine, TUESDAY, [Person("C1")])
    tasks.create_tasks(engine, TUESDAY, offers=OFFERS)
    settings = Settings(
        database_url=sqlite_url,
        offers_file=OFFERS_FILE,
        templates_dir=REPO / "templates",
        public_url=PUBLIC_URL,
        unsubscribe_secret=UNSUBSCRIBE_SECRET,
    )
    app = create_app(settings)
    app.state.clock = lambda: datetime(2026, 11, 24, 10, tzinfo=UTC)  # calling hours of TUESDAY
    yield app
    engine.dispose()
    engine_for(sqlite_url).dispose()


def browser(app) -> TestClient:
    return TestClient(app, base_url="https://testserver")  # the public URL is https: cookies are Secure


def signed_in(app, username: str) -> TestClient:
    client = browser(app)
    csrf = re.search(CSRF_RE, client.get("/calls/login").text)[1]
    client.post("/calls/login", data={"username": username, "password": PASSWORD, "csrf_token": csrf})
    return client


def assert_protected(response) -> None:
    assert response.headers["content-type"].startswith("text/html"), response.request.url
    csp = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
    assert "script-src" not in csp  # the pages run no script at all
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"


def test_every_html_page_and_error_page_sends_the_security_headers(app):
    anonymous, agent, supervisor = browser(app), signed_in(app, "jan"), signed_in(app, "sup")
    home = agent.get("/calls")
    task = agent.post(
        "/calls/next", data={"csrf_token": re.search(CSRF_RE, home.text)[1]}, follow_redirects=False
    ).headers["location"]
    csrf = re.search(CSRF_RE, anonymous.get("/calls/login").text)[1]
    token = unsubscribe.unsubscribe_url(app.state.settings, "C1", "email").rsplit("/", 1)[1]
    pages = {
        "GET /calls/login": anonymous.get("/calls/login"),
        "POST /calls/login": anonymous.post(  # a refused sign-in: 401 with the form again
            "/calls/login", data={"username": "jan", "password": "wrong password!", "csrf_token": csrf}
        ),
        "GET /calls": home,
        "GET /calls/tasks/{task_id}": agent.get(task),
        "GET /calls/tasks/{task_id} (404)": agent.get("/calls/tasks/999999"),
        "GET /calls/supervisor": supervisor.get("/calls/supervisor"),
        "GET /calls/supervisor (403)": agent.get("/calls/supervisor"),
        "GET /unsubscribe": anonymous.get("/unsubscribe"),
        "GET /unsubscribe/{token}": anonymous.get(f"/unsubscribe/{token}"),
        "GET /unsubscribe/{token} (403)": anonymous.get("/unsubscribe/" + "x" * 40),
        "POST /unsubscribe/{token}": anonymous.post(f"/unsubscribe/{token}", data={"confirm": "yes"}),
    }
    assert pages["POST /calls/login"].status_code == 401
    assert pages["GET /calls/tasks/{task_id}"].status_code == 200 and task.startswith("/calls/tasks/")
    assert pages["GET /calls/supervisor"].status_code == 200
    assert pages["GET /calls/supervisor (403)"].status_code == 403
    assert pages["GET /calls/tasks/{task_id} (404)"].status_code == 404
    assert pages["GET /unsubscribe/{token} (403)"].status_code == 403
    for response in pages.values():
        assert_protected(response)
    # a new HTML route must be added above: the list covers every one the app has
    html_routes = {
        f"{method} {route.path}"
        for route in app.routes
        if isinstance(route, APIRoute) and route.response_class is HTMLResponse
        for method in route.methods
    }
    assert html_routes <= {name.split(" (")[0] for name in pages}


def test_other_responses_are_covered_too_and_the_api_docs_cannot_be_framed(app):
    client = browser(app)
    health = client.get("/healthz")
    assert health.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in health.headers["content-security-policy"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and "frame-ancestors 'none'" in docs.headers["content-security-policy"]
    assert docs.headers["x-frame-options"] == "DENY"
