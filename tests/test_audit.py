"""The audit log: entries for what changes, a hash chain that detects tampering, no forks."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner

from outreach import audit, consent
from outreach.cli import app
from outreach.config import get_settings
from outreach.db import make_engine, session_scope
from outreach.models import AuditEntry
from outreach.pseudonym import pseudonym
from tests.factories import add_customers, customer

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _seed(engine, n: int = 5) -> None:
    with session_scope(engine) as session:
        for i in range(n):
            audit.append(session, "test.step", {"i": i}, actor="test", at=T0 + timedelta(minutes=i))


def _verdict(engine) -> audit.Verdict:
    with session_scope(engine) as session:
        return audit.verify(session)


def _drop_guard(engine) -> None:
    """What someone with database rights would do first: remove the append-only trigger."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("DROP TRIGGER audit_log_append_only ON audit_log"))
        else:
            conn.execute(text("DROP TRIGGER audit_log_no_update"))
            conn.execute(text("DROP TRIGGER audit_log_no_delete"))


def test_an_untouched_chain_verifies(engine):
    _seed(engine)
    verdict = _verdict(engine)
    assert verdict.ok and verdict.entries == 5
    with session_scope(engine) as session:
        assert verdict.head == session.scalar(select(AuditEntry.entry_hash).where(AuditEntry.seq == 5))


def test_the_log_refuses_updates_and_deletes(engine):
    _seed(engine, 2)
    for statement in (
        "UPDATE audit_log SET actor = 'x' WHERE seq = 1",
        "DELETE FROM audit_log WHERE seq = 1",
    ):
        with pytest.raises(Exception, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))


def test_a_changed_entry_is_named(engine):
    _seed(engine)
    _drop_guard(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET actor = 'someone else' WHERE seq = 3"))
    verdict = _verdict(engine)
    assert not verdict.ok and verdict.problem == "entry 3 was changed after it was written"


def test_a_changed_detail_is_named(engine):
    _seed(engine)
    _drop_guard(engine)
    with session_scope(engine) as session:
        row = session.get(AuditEntry, 2)
        row.detail = {"i": 99}
    assert _verdict(engine).problem == "entry 2 was changed after it was written"


def test_a_deleted_entry_is_named(engine):
    _seed(engine)
    _drop_guard(engine)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq = 4"))
    assert _verdict(engine).problem == "entry 4 is missing (next is 5)"


def test_an_inserted_entry_is_found(engine):
    """A forged entry slipped in at 3 with a correct hash of its own: the entry after it no longer follows."""
    _seed(engine)
    _drop_guard(engine)
    with session_scope(engine) as session:
        for seq in (5, 4, 3):  # make room, highest first so the keys never collide
            session.execute(text("UPDATE audit_log SET seq = seq + 1 WHERE seq = :s"), {"s": seq})
        prev = session.scalar(select(AuditEntry.entry_hash).where(AuditEntry.seq == 2))
        at = T0 + timedelta(minutes=2, seconds=30)
        session.add(
            AuditEntry(
                seq=3,
                at=at,
                actor="test",
                action="test.step",
                subject=None,
                detail={"i": "forged"},
                prev_hash=prev,
                entry_hash=audit.entry_hash(3, at, "test", "test.step", None, {"i": "forged"}, prev),
            )
        )
    verdict = _verdict(engine)
    assert not verdict.ok and verdict.problem.startswith("entry 4 ")


def test_two_writers_do_not_fork_the_chain(db_url):
    engines = [make_engine(db_url), make_engine(db_url)]
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def writer(engine, name: str) -> None:
        try:
            start.wait()
            for i in range(15):
                with session_scope(engine) as session:
                    audit.append(session, "test.concurrent", {"i": i}, actor=name)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(e, f"w{n}")) for n, e in enumerate(engines)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    verdict = _verdict(engines[0])
    assert verdict.ok and verdict.entries == 30
    for engine in engines:
        engine.dispose()


def test_consent_changes_are_logged_by_pseudonym(engine):
    add_customers(engine, customer("C1"))
    with session_scope(engine) as session:
        consent.record(session, "C1", "sms", "opt_out", "web:unsubscribe-page", at=T0)
    with session_scope(engine) as session:
        (entry,) = audit.entries(session, customer_id="C1")
        assert (entry.action, entry.subject, entry.actor) == (
            "consent.changed",
            pseudonym("C1"),
            "source:web:unsubscribe-page",
        )
        assert entry.detail == {"scope": "sms", "choice": "opt_out", "source": "web:unsubscribe-page"}
        assert "C1" not in json.dumps([entry.subject, entry.detail, entry.actor])


def test_a_configuration_is_logged_once_per_version_with_its_diff(engine):
    with session_scope(engine) as session:
        assert audit.record_config(session, "offers", "offers", {"priority": 1, "code": "A"}, actor="t")
        assert not audit.record_config(session, "offers", "offers", {"code": "A", "priority": 1}, actor="t")
        assert audit.record_config(session, "offers", "offers", {"code": "A", "priority": 2}, actor="t")
        assert audit.record_config(session, "campaign", "spring", {"code": "A"}, actor="t")
    with session_scope(engine) as session:
        first, second = audit.entries(session, action="offers.loaded")
        assert first.detail["diff"].startswith("--- /dev/null")
        assert "-  \"priority\": 1\n+  \"priority\": 2\n" in second.detail["diff"]
        assert first.detail["sha256"] != second.detail["sha256"]
    assert _verdict(engine).ok


@pytest.fixture
def cli(engine, monkeypatch):
    monkeypatch.setenv("OUTREACH_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_cli_lists_and_verifies(engine, cli):
    add_customers(engine, customer("C1"), customer("C2"))
    assert cli.invoke(app, ["optout", "C1", "--scope", "email", "--source", "phone"]).exit_code == 0
    assert cli.invoke(app, ["optout", "C2", "--source", "branch"]).exit_code == 0
    listed = cli.invoke(app, ["audit", "list", "--customer", "C1", "--format", "json"])
    (item,) = json.loads(listed.output)
    assert item["action"] == "consent.changed" and item["actor"].startswith("cli:")
    ok = cli.invoke(app, ["audit", "verify"])
    assert ok.exit_code == 0 and "2 entries" in ok.output
    head = ok.output.strip().rsplit(" ", 1)[-1]
    _drop_guard(engine)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq = 2"))
    assert cli.invoke(app, ["audit", "verify"]).exit_code == 0  # cutting the tail leaves a valid chain...
    cut = cli.invoke(app, ["audit", "verify", "--expect-head", head])  # ...that the anchored head exposes
    assert cut.exit_code == 1 and cut.output.count("\n") == 1 and "no longer in the chain" in cut.output
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET action = 'x' WHERE seq = 1"))
    broken = cli.invoke(app, ["audit", "verify"])
    assert (
        broken.exit_code == 1
        and broken.output.strip() == "audit log broken: entry 1 was changed after it was written"
    )


def test_the_pseudonym_is_keyed_by_the_setting(monkeypatch):
    get_settings.cache_clear()
    default = pseudonym("C1")
    monkeypatch.setenv("OUTREACH_PSEUDONYM_KEY", "production-secret")
    get_settings.cache_clear()
    try:
        assert pseudonym("C1") != default and pseudonym("C1") == pseudonym(" C1 ")
        assert pseudonym("C1").startswith("x-") and len(pseudonym("C1")) == 32
    finally:
        get_settings.cache_clear()
