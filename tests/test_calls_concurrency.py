"""Agents pressing "Next call" at the same moment on PostgreSQL never get the same customer."""

from __future__ import annotations

import re
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select

from outreach.calls import accounts, tasks
from outreach.calls.models import Agent, CallAttempt, CallTask
from outreach.db import engine_for, make_engine, session_scope
from tests.calls_support import (  # noqa: F401 (cheap_hashing is a fixture)
    CSRF_RE,
    OFFERS,
    PASSWORD,
    TUESDAY,
    LiveServer,
    Person,
    add_team_and_agents,
    call_day,
    cheap_hashing,
    make_app,
)

pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("cheap_hashing")]
TEN = datetime(2026, 11, 24, 10, tzinfo=UTC)
AGENTS = [f"agent{n}" for n in range(8)]
TASKS = 80


def _day(url: str):
    engine = make_engine(url)
    ids = add_team_and_agents(engine, "nl-1", "nl", TASKS, AGENTS)
    call_day(engine, TUESDAY, [Person(f"C{n:03d}", score=n / TASKS) for n in range(TASKS)])
    assert tasks.create_tasks(engine, TUESDAY, offers=OFFERS) == TASKS
    return engine, ids


def _assert_each_task_given_once(engine, claims: dict[str, list[int]]) -> None:
    given = [task for got in claims.values() for task in got]
    twice = [task for task, n in Counter(given).items() if n > 1]
    assert twice == [], f"tasks given to more than one agent: {twice}"
    assert len(given) == TASKS
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).where(CallTask.status == "done")) == TASKS
        assert session.scalar(select(func.count()).select_from(CallAttempt)) == TASKS
        assert session.scalar(select(func.max(CallTask.attempts))) == 1
    assert sum(1 for got in claims.values() if got) > 1  # the work really was shared out


def test_concurrent_claims_in_the_core(pg_url):
    engine, ids = _day(pg_url)
    start = threading.Barrier(len(AGENTS))
    claims: dict[str, list[int]] = {name: [] for name in AGENTS}

    def work(name: str) -> None:
        start.wait()
        while (task := tasks.claim_next(engine, ids[name], now=TEN)) is not None:
            claims[name].append(task)
            tasks.record_outcome(engine, task, ids[name], "not_interested", now=TEN)

    with ThreadPoolExecutor(len(AGENTS)) as pool:
        list(pool.map(work, AGENTS))
    _assert_each_task_given_once(engine, claims)
    engine.dispose()


def test_concurrent_next_call_requests_over_http(pg_url, monkeypatch):
    monkeypatch.setenv("OUTREACH_SESSION_SECRET", "concurrency-test-secret")
    engine, _ = _day(pg_url)
    app = make_app(pg_url, clock=lambda: TEN)
    claims: dict[str, list[int]] = {name: [] for name in AGENTS}
    with LiveServer(app) as live:
        clients = {}
        for name in AGENTS:
            client = httpx.Client(base_url=live.url, timeout=30)
            page = client.get("/calls/login")
            client.post(
                "/calls/login",
                data={"username": name, "password": PASSWORD, "csrf_token": re.search(CSRF_RE, page.text)[1]},
            )
            clients[name] = (client, re.search(CSRF_RE, client.get("/calls").text)[1])
        start = threading.Barrier(len(AGENTS))

        def work(name: str) -> None:
            client, csrf = clients[name]
            start.wait()
            while True:
                response = client.post("/calls/next", data={"csrf_token": csrf})
                assert response.status_code == 303
                match = re.fullmatch(r"/calls/tasks/(\d+)", response.headers["location"])
                if match is None:
                    assert response.headers["location"] == "/calls?notice=none"
                    return
                task = int(match[1])
                claims[name].append(task)
                done = client.post(
                    f"/calls/tasks/{task}/outcome", data={"csrf_token": csrf, "outcome": "not_interested"}
                )
                assert done.headers["location"] == "/calls?notice=saved"

        with ThreadPoolExecutor(len(AGENTS)) as pool:
            list(pool.map(work, AGENTS))
        for client, _ in clients.values():
            client.close()
    _assert_each_task_given_once(engine, claims)
    engine.dispose()
    engine_for(pg_url).dispose()


class CountingHasher(PasswordHasher):
    """The tests' cheap hasher, counting the checks made against one real password hash."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.real_hash = ""
        self.real_checks = 0
        self._lock = threading.Lock()

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:  # noqa: A002 (the library's name)
        if hash == self.real_hash:
            with self._lock:
                self.real_checks += 1
        return super().verify(hash, password)


def test_parallel_wrong_passwords_over_http_lock_after_five_checks(pg_url, monkeypatch):
    """Guesses sent at once must not all read the same count: the lock holds after five checks."""
    monkeypatch.setenv("OUTREACH_SESSION_SECRET", "concurrency-test-secret")
    hasher = CountingHasher()
    monkeypatch.setattr(accounts, "HASHER", hasher)
    engine = make_engine(pg_url)
    add_team_and_agents(engine, "nl-1", "nl", 10, ["jan"])
    with session_scope(engine) as session:
        hasher.real_hash = session.scalar(select(Agent.password_hash).where(Agent.username == "jan"))
    guesses = 30
    with LiveServer(make_app(pg_url)) as live:
        start = threading.Barrier(guesses)

        def guess(n: int) -> int:
            with httpx.Client(base_url=live.url, timeout=60) as client:
                csrf = re.search(CSRF_RE, client.get("/calls/login").text)[1]
                start.wait()
                data = {"username": "jan", "password": f"wrong guess {n}", "csrf_token": csrf}
                return client.post("/calls/login", data=data).status_code

        with ThreadPoolExecutor(guesses) as pool:
            answers = list(pool.map(guess, range(guesses)))
            assert hasher.real_checks == accounts.MAX_FAILED_LOGINS
            start.reset()
            answers += pool.map(guess, range(guesses, 2 * guesses))  # a second wave checks nothing
    assert answers == [401] * 2 * guesses
    assert hasher.real_checks == accounts.MAX_FAILED_LOGINS
    with session_scope(engine) as session:
        agent = session.scalar(select(Agent).where(Agent.username == "jan"))
        assert accounts.lock_ends(agent) is not None
    # locked: the right password is refused too, and is not checked against the hash
    with session_scope(engine) as session:
        assert accounts.authenticate(session, "jan", PASSWORD) is None
    assert hasher.real_checks == accounts.MAX_FAILED_LOGINS
    engine.dispose()
    engine_for(pg_url).dispose()
