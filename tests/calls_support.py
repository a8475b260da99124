"""Test data for the call-centre tests: a day of call messages, dispatched as the dispatcher would."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import Engine, select

from outreach import ledger
from outreach.calls import accounts
from outreach.config import load_offers
from outreach.db import session_scope
from outreach.models import Candidate, Customer, Decision, Message, Transaction
from tests.fixture_files import OFFERS_FILE

REPO = Path(__file__).resolve().parent.parent
# argon2id at its real cost takes ~0.1-0.5 s a hash on this machine: the tests use a cheap setting
CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
OFFERS = load_offers(OFFERS_FILE)
TUESDAY = date(2026, 11, 24)  # an ordinary working day
PASSWORD = "correct horse battery"


@pytest.fixture
def cheap_hashing(monkeypatch):
    """Import into a test module and list in ``pytestmark = pytest.mark.usefixtures(...)``."""
    monkeypatch.setattr(accounts, "HASHER", CHEAP_HASHER)


@dataclass
class Person:
    customer_id: str
    offer_code: str = "INVEST_CALL"
    score: float = 0.5
    language: str = "nl"
    timezone: str = "Europe/Amsterdam"
    first_name: str = "Anna"
    last_name: str = "de Vries"
    mobile: str | None = None
    mobile_valid: bool = True
    trigger: str = "large_balance"
    trigger_ref: str = ""


def add_customers(engine: Engine, people: list[Person]) -> None:
    with session_scope(engine) as session:
        for n, p in enumerate(people):
            session.add(
                Customer(
                    customer_id=p.customer_id,
                    first_name=p.first_name,
                    last_name=p.last_name,
                    language=p.language,
                    mobile=p.mobile or f"+316{10000000 + n:08d}",
                    mobile_valid=p.mobile_valid,
                    email=f"{p.customer_id.lower()}@example.org",
                    email_valid=True,
                    country="NL",
                    address_valid=False,
                    timezone=p.timezone,
                )
            )


def plan_day(engine: Engine, run_date: date, people: list[Person], channel: str = "call") -> list[int]:
    """Candidates, planned decisions and ledger rows for ``people``; returns the message ids."""
    stamp = datetime.now(UTC)
    with session_scope(engine) as session:
        for p in people:
            candidate = Candidate(
                candidate_date=run_date,
                customer_id=p.customer_id,
                offer_code=p.offer_code,
                trigger=p.trigger,
                trigger_ref=p.trigger_ref,
                score=p.score,
                source="test",
            )
            session.add(candidate)
            session.flush()
            session.add(
                Decision(
                    candidate_id=candidate.id,
                    decision_date=run_date,
                    customer_id=p.customer_id,
                    offer_code=p.offer_code,
                    outcome="planned",
                    reason="planned",
                    channel=channel,
                    legal_basis="legitimate_interest",
                    decided_at=stamp,
                )
            )
        session.flush()
        ledger.plan_messages(session, run_date)
    with session_scope(engine) as session:
        ids = list(
            session.scalars(
                select(Message.id)
                .where(Message.run_date == run_date, Message.channel == channel)
                .order_by(Message.id)
            )
        )
    return ids


def dispatch_calls(engine: Engine, run_date: date) -> list[int]:
    """What the dispatcher does for the call channel with the outbox backend: planned → sent."""
    with session_scope(engine) as session:
        due = ledger.due_ids(session, run_date, "call", datetime.now(UTC))
    won = ledger.claim(engine, due, "test-dispatch")
    with session_scope(engine) as session:
        ledger.record_sent(session, "outbox", {mid: f"outbox-{mid}" for mid in won})
    return won


def call_day(engine: Engine, run_date: date, people: list[Person]) -> list[int]:
    add_customers(engine, people)
    plan_day(engine, run_date, people)
    return dispatch_calls(engine, run_date)


def add_team_and_agents(
    engine: Engine,
    team: str,
    language: str | None,
    capacity: int,
    agents: list[str],
    supervisor: str | None = None,
) -> dict[str, int]:
    with session_scope(engine) as session:
        accounts.add_team(session, team, capacity, language)
        ids = {name: accounts.add_agent(session, name, PASSWORD, team).id for name in agents}
        if supervisor:
            ids[supervisor] = accounts.add_agent(session, supervisor, PASSWORD, team, role="supervisor").id
    return ids


def add_transaction(engine: Engine, tx_id: str, customer_id: str, booked: datetime, **fields) -> None:
    with session_scope(engine) as session:
        session.add(
            Transaction(
                transaction_id=tx_id,
                customer_id=customer_id,
                booked_at=booked,
                amount=fields.pop("amount", 100),
                currency="EUR",
                **fields,
            )
        )


def make_app(url: str, clock=None):
    """The real app (create_app) on ``url``; ``clock`` freezes the call centre's "now"."""
    from outreach.config import Settings
    from outreach.web.app import create_app

    app = create_app(Settings(database_url=url, offers_file=OFFERS_FILE, templates_dir=REPO / "templates"))
    if clock is not None:
        app.state.clock = clock
    return app


CSRF_RE = r'name="csrf_token" value="([^"]+)"'


class LiveServer:
    """A real uvicorn serving ``app`` on a free loopback port, in a background thread."""

    def __init__(self, app) -> None:
        import socket

        import uvicorn

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)

    def __enter__(self) -> LiveServer:
        import threading
        import time

        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        for _ in range(200):
            if self.server.started:
                return self
            time.sleep(0.05)
        raise RuntimeError("uvicorn did not start")

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
