"""The bulk write of a day's decisions and ledger rows (outreach.plan_write) against the old naive write.

A few hundred candidates from the benchmark's generator (consent, suppressions, history, several time
zones, decided early in the morning so SMS and calls are held with release times) are decided and
written once by the naive reference and once by ``decide_day``; every stored column must match.
"""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import delete, exc, func, select, text

from bench.policy_data import generate, write_postgres, write_sqlite
from outreach import ledger
from outreach.campaigns import seam
from outreach.config import load_offers
from outreach.db import make_engine, session_scope
from outreach.ledger import idempotency_key
from outreach.models import Decision, Message
from outreach.planning import decide_day, snapshot_offers
from outreach.policy import decide, load_inputs
from outreach.sharding import shard_bucket
from outreach_dev import planning_reference
from tests.factories import add_candidates
from tests.fixture_files import OFFERS_FILE

DAY = date(2026, 11, 18)
EARLY = datetime(2026, 11, 18, 6, 30, tzinfo=UTC)  # 07:30 in Amsterdam: SMS and calls still quiet
STAMP = datetime(2026, 11, 18, 6, 31, 5, 123456, tzinfo=UTC)
OFFERS = load_offers(OFFERS_FILE)
DECISION_COLUMNS = [c.name for c in Decision.__table__.columns if c.name != "id"]
MESSAGE_COLUMNS = [c.name for c in Message.__table__.columns if c.name not in ("id", "decision_id")]


@pytest.fixture
def bank(engine):
    """300 customers, 400 candidates on DAY, with the benchmark's history around them."""
    frames = generate(300, 400, DAY, seed=11)
    if engine.dialect.name == "sqlite":
        write_sqlite(engine.url.database, frames)
    else:
        write_postgres(engine.url.render_as_string(hide_password=False).replace("+psycopg", ""), frames)
    return engine


@pytest.fixture(autouse=True)
def fixed_stamp(monkeypatch):
    """Both writers stamp created_at/updated_at with ledger.now(): the same instant, so rows compare."""
    monkeypatch.setattr(ledger, "now", lambda: STAMP)
    monkeypatch.setattr(planning_reference, "now", lambda: STAMP)


def stored(engine) -> tuple[dict, dict]:
    """The day's decisions by candidate and messages by key, as the database returns them raw
    (text SQL: on SQLite the very strings stored, on PostgreSQL the driver's typed values)."""
    cols = ", ".join(DECISION_COLUMNS)
    mcols = ", ".join(f"m.{c}" for c in MESSAGE_COLUMNS)
    with engine.connect() as conn:
        decisions = {
            r.candidate_id: tuple(r)
            for r in conn.execute(text(f"SELECT {cols} FROM decisions WHERE decision_date = '{DAY}'"))
        }
        messages = {
            r.idempotency_key: tuple(r)
            for r in conn.execute(
                text(
                    f"SELECT {mcols}, d.candidate_id FROM messages m JOIN decisions d ON d.id = m.decision_id"
                    f" WHERE m.run_date = '{DAY}'"
                )
            )
        }
    return decisions, messages


def naive_day(engine) -> None:
    snapshot_offers(engine, OFFERS)
    inputs = load_inputs(engine, DAY, OFFERS, EARLY)
    frame = seam.apply(engine, decide(inputs), inputs)
    with session_scope(engine) as session:
        planning_reference.write_decisions_naive(session, frame, DAY, EARLY)
        planning_reference.plan_messages_naive(session, DAY)


def forget_day(engine) -> None:
    with session_scope(engine) as session:
        session.execute(delete(Message).where(Message.run_date == DAY))
        session.execute(delete(Decision).where(Decision.decision_date == DAY))


def test_bulk_write_stores_what_the_naive_write_stores(bank):
    naive_day(bank)
    want_decisions, want_messages = stored(bank)
    forget_day(bank)
    report = decide_day(bank, DAY, OFFERS, now=EARLY)
    got_decisions, got_messages = stored(bank)

    outcomes = {row[DECISION_COLUMNS.index("outcome")] for row in got_decisions.values()}
    assert len(got_decisions) == 400 and {"planned", "held", "suppressed"} <= outcomes
    assert any(row[MESSAGE_COLUMNS.index("not_before")] is not None for row in got_messages.values())
    assert any(row[DECISION_COLUMNS.index("channel")] is None for row in got_decisions.values())
    assert any(row[DECISION_COLUMNS.index("detail")] is None for row in got_decisions.values())
    assert report.decided == 400 and report.messages_planned == len(want_messages) > 50
    for candidate_id, want in want_decisions.items():  # column by column, for a clear failure
        for name, a, b in zip(DECISION_COLUMNS, want, got_decisions[candidate_id], strict=True):
            assert (name, b) == (name, a), candidate_id
    for key, want in want_messages.items():
        for name, a, b in zip([*MESSAGE_COLUMNS, "candidate_id"], want, got_messages[key], strict=True):
            assert (name, b) == (name, a), key
    assert got_decisions.keys() == want_decisions.keys() and got_messages.keys() == want_messages.keys()


def test_ledger_rows_carry_the_python_key_shard_and_a_timezone_aware_release(bank):
    decide_day(bank, DAY, OFFERS, now=EARLY)
    with session_scope(bank) as session:
        rows = session.execute(
            select(Message, Decision).join(Decision, Decision.id == Message.decision_id)
        ).all()
    assert rows
    for message, decision in rows:
        assert message.idempotency_key == idempotency_key(
            DAY, decision.customer_id, decision.offer_code, decision.channel
        )
        assert message.shard == shard_bucket(decision.customer_id)
        release = decision.release_at if decision.outcome == "held" else None
        assert (release is None) == (decision.outcome != "held")
        assert message.not_before == release  # the decision's typed release time, copied in SQL
    if bank.dialect.name == "postgresql":
        assert all(m.not_before is None or m.not_before.tzinfo is not None for m, _ in rows)


def test_a_rerun_decides_only_new_candidates_and_plans_nothing_twice(bank):
    first = decide_day(bank, DAY, OFFERS, now=EARLY)
    before = stored(bank)
    again = decide_day(bank, DAY, OFFERS, now=EARLY)
    assert (again.decided, again.messages_planned) == (0, 0)
    assert stored(bank) == before
    add_candidates(bank, DAY, ("C00000001", "SAVINGS_BOOST", 0.99), ("NEWCOMER", "KIDS_SAVINGS"))
    later = decide_day(bank, DAY, OFFERS, now=EARLY)
    assert later.decided == 2
    decisions, messages = stored(bank)
    assert len(decisions) == first.decided + 2
    assert len(messages) == first.messages_planned + later.messages_planned
    assert {k: v for k, v in decisions.items() if k in before[0]} == before[0]


def test_a_crash_between_decisions_and_ledger_leaves_neither_and_the_next_run_decides_all(bank, monkeypatch):
    import outreach.planning as planning

    def crash(*_args, **_kwargs):
        raise RuntimeError("worker killed between the decisions and the ledger")

    monkeypatch.setattr(planning, "plan_messages", crash)
    with pytest.raises(RuntimeError):
        decide_day(bank, DAY, OFFERS, now=EARLY)
    assert stored(bank) == ({}, {})  # one transaction: the decisions went with the ledger rows
    monkeypatch.undo()
    monkeypatch.setattr(ledger, "now", lambda: STAMP)
    report = decide_day(bank, DAY, OFFERS, now=EARLY)
    decisions, messages = stored(bank)
    live = [d for d in decisions.values() if d[DECISION_COLUMNS.index("outcome")] in ("planned", "held")]
    assert report.decided == 400 == len(decisions)
    assert report.messages_planned == len(live) == len(messages)


def test_decisions_stored_without_ledger_rows_are_repaired_by_the_next_run(bank):
    """What an older version left after a crash between its two commits (or a partial ledger)."""
    decide_day(bank, DAY, OFFERS, now=EARLY)
    want = stored(bank)
    with session_scope(bank) as session:
        keys = sorted(want[1])
        session.execute(delete(Message).where(Message.idempotency_key.in_(keys[: len(keys) // 2])))
    report = decide_day(bank, DAY, OFFERS, now=EARLY)
    assert (report.decided, report.messages_planned) == (0, len(keys) // 2)
    assert stored(bank) == want


def test_two_runs_at_once_never_decide_a_candidate_twice(bank):
    """The unique decisions.candidate_id still guards the bulk write: the later writer fails whole."""
    errors: list[BaseException] = []
    reports = []
    start = threading.Barrier(2)

    def run() -> None:
        engine = make_engine(bank.url.render_as_string(hide_password=False))
        try:
            start.wait()
            reports.append(decide_day(engine, DAY, OFFERS, now=EARLY))
        except BaseException as error:  # noqa: BLE001 - collected for the asserts below
            errors.append(error)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert all(isinstance(e, exc.IntegrityError) for e in errors), errors
    assert sum(r.decided for r in reports) == 400
    decisions, messages = stored(bank)
    live = [d for d in decisions.values() if d[DECISION_COLUMNS.index("outcome")] in ("planned", "held")]
    assert len(decisions) == 400 and len(messages) == len(live)
    with session_scope(bank) as session:
        assert session.scalar(select(func.count()).select_from(Decision)) == 400


def test_ledger_ids_follow_decision_order(bank):
    """Dispatch takes due messages in id order; the ledger keeps the order of the decisions."""
    decide_day(bank, DAY, OFFERS, now=EARLY)
    with session_scope(bank) as session:
        today = select(Message.decision_id).where(Message.run_date == DAY).order_by(Message.id)
        decision_ids = list(session.scalars(today))
    assert len(decision_ids) > 50 and decision_ids == sorted(decision_ids)
