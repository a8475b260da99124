"""The consent API over the real app (TestClient), on SQLite and PostgreSQL: keys and scopes,
idempotent writes, state, history, the changes feed, rate limits, and the dispatcher honouring
an API objection before the next send."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from channels import load_channel
from outreach import api_clients, consent, ledger
from outreach.config import Settings, load_offers
from outreach.db import make_engine, session_scope
from outreach.dispatch import Dispatcher
from outreach.models import ConsentEvent, Message
from outreach.planning import decide_day
from outreach.web.app import create_app
from tests.factories import add_candidates, add_customers, customer
from tests.fixture_files import OFFERS_FILE

API = "/api/consent/v1"
DAY = date(2026, 11, 18)
NOON = datetime(2026, 11, 18, 11, 0, tzinfo=UTC)


def new_client(engine, name: str, scopes=("consent:read", "consent:write"), rate: str | None = None) -> str:
    with session_scope(engine) as session:
        return api_clients.create(session, name, list(scopes), rate)


@pytest.fixture
def api(db_url, engine, tmp_path):
    add_customers(engine, *[customer(f"C{i}") for i in range(3)])
    settings = Settings(database_url=db_url, outbox_dir=tmp_path / "outbox", offers_file=OFFERS_FILE)
    client = TestClient(create_app(settings))
    key = new_client(engine, "online-banking")
    client.headers["Authorization"] = f"Bearer {key}"
    yield client
    client.close()
    if getattr(client.app.state, "engine", None) is not None:
        client.app.state.engine.dispose()


def put(client, path: str, body: dict, key: str = "k-1", **headers):
    return client.put(f"{API}{path}", json=body, headers={"Idempotency-Key": key, **headers})


def events(engine, customer_id: str) -> list[tuple]:
    with session_scope(engine) as session:
        rows = session.execute(
            select(ConsentEvent.scope, ConsentEvent.choice, ConsentEvent.actor_kind, ConsentEvent.actor)
            .where(ConsentEvent.customer_id == customer_id)
            .order_by(ConsentEvent.id)
        )
        return [tuple(r) for r in rows]


def test_routes_and_key_scheme_are_in_the_openapi_document(api):
    document = api.get("/openapi.json").json()
    for path in (
        "/customers/{customer_id}",
        "/customers/{customer_id}/history",
        "/customers/{customer_id}/global",
        "/customers/{customer_id}/channels/{channel}",
        "/customers/{customer_id}/topics/{topic}",
        "/changes",
    ):
        assert f"{API}{path}" in document["paths"], path
    assert document["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"


def test_set_read_and_history_record_the_client_as_actor(api, engine):
    response = put(api, "/customers/C1/global", {"choice": "opt_out", "source": "online_banking"})
    assert response.status_code == 200
    assert response.json() | {"event_id": None} == {
        "customer_id": "C1",
        "scope": "all",
        "choice": "opt_out",
        "changed": True,
        "event_id": None,
    }
    assert put(api, "/customers/C1/channels/sms", {"choice": "opt_out"}, key="k-2").status_code == 200
    assert put(api, "/customers/C1/topics/credit", {"choice": "opt_out"}, key="k-3").status_code == 200
    state = api.get(f"{API}/customers/C1").json()
    assert state["global"]["choice"] == "opt_out" and state["global"]["allowed"] is False
    assert state["channels"]["sms"]["choice"] == "opt_out"
    assert state["channels"]["email"] == {"choice": None, "since": None, "allowed": False}  # global wins
    assert state["topics"]["credit"]["choice"] == "opt_out" and "savings" in state["topics"]
    history = api.get(f"{API}/customers/C1/history").json()["events"]
    assert [(e["scope"], e["actor"]["kind"], e["actor"]["name"]) for e in history] == [
        ("all", "api_client", "online-banking"),
        ("sms", "api_client", "online-banking"),
        ("topic:credit", "api_client", "online-banking"),
    ]
    assert history[0]["source"] == "online_banking" and history[0]["actor"]["request_id"]
    back_in = put(api, "/customers/C1/global", {"choice": "opt_in"}, key="k-4").json()
    assert back_in["changed"] is True
    assert api.get(f"{API}/customers/C1").json()["channels"]["email"]["allowed"] is True


def test_a_retried_request_changes_nothing_twice(api, engine):
    first = put(api, "/customers/C2/channels/email", {"choice": "opt_out"}, key="retry-me")
    again = put(api, "/customers/C2/channels/email", {"choice": "opt_out"}, key="retry-me")
    assert again.status_code == 200 and again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert events(engine, "C2") == [("email", "opt_out", "api_client", "online-banking")]
    # an opt-in in between, then the old request retried: still nothing recorded again
    put(api, "/customers/C2/channels/email", {"choice": "opt_in"}, key="other")
    put(api, "/customers/C2/channels/email", {"choice": "opt_out"}, key="retry-me")
    assert [e[1] for e in events(engine, "C2")] == ["opt_out", "opt_in"]
    reused = put(api, "/customers/C2/channels/sms", {"choice": "opt_out"}, key="retry-me")
    assert reused.status_code == 422 and "different request" in reused.json()["detail"]
    # the same choice again under a new key is accepted but records no duplicate event
    same = put(api, "/customers/C2/channels/email", {"choice": "opt_in"}, key="third")
    assert same.json()["changed"] is False and len(events(engine, "C2")) == 2


def test_missing_unknown_rotated_and_revoked_keys_get_401(api, engine):
    bare = TestClient(api.app)
    response = bare.get(f"{API}/customers/C1")
    assert response.status_code == 401 and "API key" in response.json()["detail"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    for wrong in ("Bearer nonsense", "Bearer ock_0123456789abcdef_wrongsecret", "Basic dXNlcjpwYXNz"):
        assert bare.get(f"{API}/customers/C1", headers={"Authorization": wrong}).status_code == 401
    old = new_client(engine, "app")
    with session_scope(engine) as session:
        new = api_clients.rotate(session, "app")
    assert bare.get(f"{API}/customers/C1", headers={"Authorization": f"Bearer {old}"}).status_code == 401
    assert bare.get(f"{API}/customers/C1", headers={"Authorization": f"Bearer {new}"}).status_code == 200
    with session_scope(engine) as session:
        api_clients.revoke(session, "app")
    assert bare.get(f"{API}/customers/C1", headers={"Authorization": f"Bearer {new}"}).status_code == 401


def test_a_read_only_key_may_read_but_not_write(api, engine):
    reader = new_client(engine, "reporting", scopes=("consent:read",))
    headers = {"Authorization": f"Bearer {reader}", "Idempotency-Key": "x"}
    assert api.get(f"{API}/customers/C1", headers=headers).status_code == 200
    refused = api.put(f"{API}/customers/C1/global", json={"choice": "opt_out"}, headers=headers)
    assert refused.status_code == 403 and "consent:write" in refused.json()["detail"]
    assert events(engine, "C1") == []


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "says"),
    [
        ("/customers/NOPE/global", {"choice": "opt_out"}, {}, 404, "unknown customer"),
        ("/customers/C1/global", {"choice": "maybe"}, {}, 422, "choice"),
        ("/customers/C1/global", {"choice": "opt_out", "extra": 1}, {}, 422, "extra"),
        ("/customers/C1/channels/fax", {"choice": "opt_out"}, {}, 422, "channel"),
        ("/customers/C1/topics/Not%20A%20Topic", {"choice": "opt_out"}, {}, 422, "topic"),
        ("/customers/" + "X" * 40 + "/global", {"choice": "opt_out"}, {}, 422, "customer_id"),
        ("/customers/C1/global", {"choice": "opt_out"}, {"Idempotency-Key": ""}, 422, "Idempotency-Key"),
    ],
)
def test_bad_requests_get_a_clear_4xx(api, engine, path, body, headers, status, says):
    response = api.put(f"{API}{path}", json=body, headers={"Idempotency-Key": "k", **headers})
    assert response.status_code == status
    assert says in str(response.json()["detail"])
    assert events(engine, "C1") == []


def test_a_write_without_idempotency_key_is_refused(api):
    response = api.put(f"{API}/customers/C1/global", json={"choice": "opt_out"})
    assert response.status_code == 422 and "Idempotency-Key" in str(response.json()["detail"])


def test_changes_feed_pages_through_every_path_in_order(api, engine):
    with session_scope(engine) as session:  # a change by another path (the call centre)
        consent.record(
            session, "C0", "phone", "opt_out", "call_centre:anna", actor=consent.Actor("agent", "anna")
        )
    put(api, "/customers/C1/global", {"choice": "opt_out"}, key="a")
    put(api, "/customers/C2/topics/travel", {"choice": "opt_out"}, key="b")
    first = api.get(f"{API}/changes", params={"limit": 2}).json()
    assert [(c["customer_id"], c["scope"]) for c in first["changes"]] == [("C0", "phone"), ("C1", "all")]
    second = api.get(f"{API}/changes", params={"cursor": first["next_cursor"], "limit": 2}).json()
    assert [(c["customer_id"], c["scope"]) for c in second["changes"]] == [("C2", "topic:travel")]
    empty = api.get(f"{API}/changes", params={"cursor": second["next_cursor"]}).json()
    assert empty["changes"] == [] and empty["next_cursor"] == second["next_cursor"]
    assert api.get(f"{API}/changes", params={"cursor": "garbage"}).status_code == 422


@pytest.mark.postgres
def test_feed_holds_back_changes_behind_a_transaction_still_running(pg_url):
    """A change whose transaction began earlier but commits later is not skipped by the cursor."""
    from outreach import consent_feed

    engine = make_engine(pg_url)
    try:
        slow = session_scope(engine)
        slow_session = slow.__enter__()
        # a bulk import writes consent rows without consent.record (and so without the audit log's
        # lock, which would make the second writer wait): it takes a transaction id first
        slow_session.add(
            ConsentEvent(
                customer_id="EARLY", scope="all", choice="opt_out", source="import", recorded_at=NOON
            )
        )
        slow_session.flush()
        with session_scope(engine) as session:
            consent.record(session, "LATE", "all", "opt_out", "api")
        with session_scope(engine) as session:
            seen, cursor = consent_feed.changes(session, None, 100)
        assert seen == []  # LATE is committed, but EARLY might still come before it
        slow.__exit__(None, None, None)
        with session_scope(engine) as session:
            seen, cursor = consent_feed.changes(session, cursor, 100)
            assert [e.customer_id for e in seen] == ["EARLY", "LATE"]
    finally:
        engine.dispose()


def test_each_client_is_rate_limited_on_its_own(api, engine):
    slow = new_client(engine, "batch-job", rate="3/minute")
    headers = {"Authorization": f"Bearer {slow}"}
    answers = [api.get(f"{API}/customers/C1", headers=headers).status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]
    limited = api.get(f"{API}/customers/C1", headers=headers)
    assert int(limited.headers["Retry-After"]) >= 1 and "rate limit" in limited.json()["detail"]
    assert api.get(f"{API}/customers/C1").status_code == 200  # the other client is not slowed


def test_an_api_objection_cancels_the_days_planned_message_before_it_is_sent(api, engine, tmp_path):
    add_candidates(engine, DAY, *[(f"C{i}", "KIDS_SAVINGS") for i in range(3)])
    decide_day(engine, DAY, load_offers(OFFERS_FILE), now=NOON)
    assert put(api, "/customers/C1/global", {"choice": "opt_out"}).status_code == 200
    settings = Settings(database_url=str(engine.url), outbox_dir=tmp_path / "outbox")
    channel = load_channel("email", "outbox", outbox_dir=settings.outbox_dir)
    dispatcher = Dispatcher(engine, settings, load_offers(OFFERS_FILE), channel, "w1")
    with session_scope(engine) as session:
        due = ledger.due_ids(session, DAY, "email", NOON)
    report = dispatcher.send_ids(due)
    assert (report.sent, report.cancelled) == (2, 1)
    with session_scope(engine) as session:
        c1 = session.scalars(select(Message).where(Message.customer_id == "C1")).one()
    assert (c1.status, c1.last_error_code) == ("cancelled", "opted_out_before_send")


def test_api_clients_cli_creates_rotates_lists_and_revokes(sqlite_url, monkeypatch):
    from typer.testing import CliRunner

    from outreach.cli import app
    from outreach.config import get_settings

    monkeypatch.setenv("OUTREACH_DATABASE_URL", sqlite_url)
    get_settings.cache_clear()
    runner = CliRunner()

    def run(*args):
        return runner.invoke(app, ["api-clients", *args], env={"COLUMNS": "200"})

    try:
        created = run("create", "online-banking", "--scope", "consent:read")
        assert created.exit_code == 0
        key = created.stdout.strip().splitlines()[-1]
        engine = make_engine(sqlite_url)
        with session_scope(engine) as session:
            assert api_clients.authenticate(session, key).scopes == {"consent:read"}
        rotated = run("rotate", "online-banking").stdout.strip().splitlines()[-1]
        listed = run("list").stdout
        assert "online-banking" in listed and "consent:read" in listed
        assert key.split("_")[2] not in listed and rotated.split("_")[2] not in listed
        assert run("revoke", "online-banking").exit_code == 0
        with session_scope(engine) as session:
            assert api_clients.authenticate(session, key) is None
            assert api_clients.authenticate(session, rotated) is None
        engine.dispose()
        bad = run("create", "other", "--scope", "consent:everything")
        assert bad.exit_code == 2 and "consent:everything" in bad.output and "Traceback" not in bad.output
        twice = run("create", "online-banking")
        assert twice.exit_code == 2 and "exists already" in twice.output
    finally:
        get_settings.cache_clear()


@pytest.mark.postgres
def test_concurrent_retries_with_one_key_change_once(pg_url):
    """Eight copies of one request at the same moment: one change, eight identical answers."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from outreach import idempotency

    engine = make_engine(pg_url)
    add_customers(engine, customer("C1"))
    client_id = 0
    with session_scope(engine) as session:
        new_key = api_clients.create(session, "twins", ["consent:write"])
        client_id = api_clients.authenticate(session, new_key).id
    barrier = Barrier(8)

    def attempt(_):
        with session_scope(engine) as session:

            def work():
                barrier.wait(timeout=30)  # all eight have begun before any stores its key
                event = consent.record(session, "C1", "all", "opt_out", "api")
                return 200, {"event_id": event.id}

            return idempotency.run_once(session, client_id, "same-key", "digest", work)

    try:
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(attempt, range(8)))
        assert len({a[1]["event_id"] for a in answers}) == 1
        assert sorted(a[2] for a in answers) == [False] + [True] * 7
        with session_scope(engine) as session:
            assert session.scalars(select(ConsentEvent.id)).all() == [answers[0][1]["event_id"]]
    finally:
        engine.dispose()
