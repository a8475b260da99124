"""Access and erasure: everything held about a customer comes out, and after erasure nothing is left."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text
from typer.testing import CliRunner

from outreach import audit
from outreach.cli import app
from outreach.config import get_settings
from outreach.db import session_scope
from outreach.importer import import_file
from outreach.models import ConsentEvent, Message
from outreach.planning import decide_day
from outreach.pseudonym import pseudonym
from outreach.subjects.erase import erase
from outreach.subjects.holdings import HELD, NOT_PER_CUSTOMER, customer_tables
from tests import subject_seed
from tests.factories import add_candidates
from tests.subject_seed import IBAN, TARGET

SECRETS = (TARGET["first_name"], TARGET["last_name"], TARGET["email"], TARGET["mobile"], "0687654321", IBAN)


@pytest.fixture
def seeded(engine, tmp_path, monkeypatch):
    outbox, reports = tmp_path / "outbox", tmp_path / "reports"
    subject_seed.seed(engine, outbox, reports)
    monkeypatch.setenv("OUTREACH_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("OUTREACH_OUTBOX_DIR", str(outbox))
    monkeypatch.setenv("OUTREACH_OFFERS_FILE", str(subject_seed.REPO / "tests" / "fixtures" / "offers.yaml"))
    monkeypatch.setenv("OUTREACH_TEMPLATES_DIR", str(subject_seed.REPO / "templates"))
    get_settings.cache_clear()
    yield outbox, reports
    get_settings.cache_clear()


def _cli(*args: str):
    return CliRunner().invoke(app, list(args))


def _all_text(engine) -> str:
    """Every row of every table, as text."""
    parts = []
    with engine.connect() as conn:
        for name in inspect(conn).get_table_names():
            for row in conn.execute(text(f'SELECT * FROM "{name}"')):
                parts.append(" ".join(str(v) for v in row))
    return "\n".join(parts)


def _all_files(*roots: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for root in roots for p in root.rglob("*") if p.is_file()}


def test_every_table_with_customer_data_is_covered():
    covered = {held.table.name for held in HELD} | set(NOT_PER_CUSTOMER)
    assert customer_tables() - covered == set()


def test_export_holds_everything(engine, seeded, tmp_path):
    result = _cli("subject", "export", "C7", "--out", str(tmp_path / "access"))
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "access" / "C7.json").read_text())
    assert data["profile"]["email"] == TARGET["email"]
    assert [e["scope"] for e in data["consent_history"]] == ["sms"]
    assert len(data["suppressions"]) == 1 and data["transactions"][0]["counterparty_iban"] == IBAN
    assert sorted(m["channel"] for m in data["messages"]) == ["call", "email", "letter", "sms"]
    assert {c["message_id"] for c in data["message_contents"]} == {m["id"] for m in data["messages"]}
    assert "Fenna" in " ".join(c["body"] for c in data["message_contents"])
    assert data["delivery_events"] and data["inbound_messages"][0]["intent"] == "stop"
    assert data["call_attempts"][0]["note"] == "Fenna Zwartkop: call back"
    assert data["campaign_assignments"][0]["campaign"] == "spring"
    trails = data["decision_trails"]
    assert [t["offer_code"] for t in trails] == [
        "KIDS_SAVINGS",
        "SAVINGS_BOOST",
        "TRAVEL_INSURANCE",
        "INVEST_CALL",
    ]
    assert all(t["outcome"] == "planned" for t in trails)
    assert {r["verdict"] for r in trails[0]["rules"]} == {"passed"} and len(trails[0]["rules"]) > 10
    assert all(m["customer_id"] == "C7" for m in data["messages"])  # the other customer is not in it
    html = (tmp_path / "access" / "C7.html").read_text()
    assert "Content-Security-Policy" in html and "Zwartkop" in html and "call back" in html
    assert "Is the customer known?" in html  # the rule trail
    with session_scope(engine) as session:
        assert [e.action for e in audit.entries(session, action="subject.exported", customer_id="C7")] == [
            "subject.exported"
        ]


def test_unknown_customer_fails_in_one_line(engine, seeded, tmp_path):
    for args in (("export", "NOPE", "--out", str(tmp_path / "x")), ("erase", "NOPE", "--yes")):
        result = _cli("subject", *args)
        assert result.exit_code == 1 and result.output.count("\n") == 1
        assert result.output.startswith("unknown customer NOPE")
    assert not (tmp_path / "x").exists()


def test_erasure_leaves_no_personal_data_in_rows_or_files(engine, seeded, tmp_path):
    outbox, reports = seeded
    before = _all_files(outbox, reports)
    assert any(TARGET["email"].encode() in body for body in before.values())
    with session_scope(engine) as session:
        kept_messages = session.scalar(select(Message.id).where(Message.customer_id == "C8"))
    assert _cli("subject", "export", "C7", "--out", str(reports / "access")).exit_code == 0
    result = _cli("subject", "erase", "C7", "--yes", "--files", str(reports))
    assert result.exit_code == 0, result.output
    assert not (reports / "access" / "C7.html").exists()  # an access export is theirs alone

    rows = _all_text(engine)
    for secret in SECRETS:
        assert secret not in rows, secret
    assert "C7" not in {r for r in rows.split()}  # the id itself survives only as a pseudonym
    files = _all_files(outbox, reports)
    for path, body in files.items():
        if path.suffix == ".pdf":
            continue  # PDFs are checked by name below: their text is compressed
        for secret in SECRETS:
            assert secret.encode() not in body, (secret, path)
    with session_scope(engine) as session:
        ids = {
            str(m) for m in session.scalars(select(Message.id).where(Message.customer_id == pseudonym("C7")))
        }
        assert len(ids) == 4  # the ledger keeps the contacts, under the pseudonym
        assert session.get(Message, kept_messages).customer_id == "C8"
    leftover = [p for p in files if p.suffix == ".pdf" and p.stem.split("_", 1)[-1] in ids]
    assert leftover == []
    # the other customer is untouched: still in the call list, the letters and the report
    assert "Anne de Vries" in (reports / "complaints.html").read_text()
    assert any(b"C8" in body for p, body in files.items() if p.name == "manifest.csv")
    with session_scope(engine) as session:
        assert audit.verify(session).ok


def test_print_batch_summary_still_matches_its_manifest(engine, seeded):
    import csv
    import hashlib

    outbox, _ = seeded
    assert _cli("subject", "erase", "C7", "--yes").exit_code == 0
    day = outbox / subject_seed.LETTER_DAY.isoformat() / "print"
    with (day / "batches.csv").open(newline="") as handle:
        (batch,) = list(csv.DictReader(handle))
    manifest = day / batch["batch"] / "manifest.csv"
    assert hashlib.sha256(manifest.read_bytes()).hexdigest() == batch["manifest_sha256"]
    assert batch["letters"] == "1" and b"C7" not in manifest.read_bytes()


def test_an_erased_customer_reimported_stays_suppressed(engine, seeded, tmp_path):
    erased_at = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
    erase(engine, "C7", [seeded[0]], now=erased_at)
    export = _cli("subject", "export", "C7", "--out", str(tmp_path / "access"))
    assert export.exit_code == 0 and "tombstone only" in export.output
    data = json.loads((tmp_path / "access" / "C7.json").read_text())
    assert set(data) == {"customer_id", "exported_at", "erased"}
    assert data["erased"]["objected_at"] is not None

    file = tmp_path / "customers.csv"
    file.write_text(
        "customer_id,first_name,last_name,language,birth_date,mobile,email,street,house_number,"
        "postal_code,city,country\n"
        f"C7,Fenna,Zwartkop,nl,1980-05-01,{TARGET['mobile']},{TARGET['email']},Dorpsstraat,12,9711 AB,"
        "Groningen,NL\n",
        encoding="utf-8",
    )
    report = import_file(engine, "customers", file)
    assert report.flagged.get("erased_before_suppressed") == 1
    import_file(engine, "customers", file)  # a second import adds no second objection
    with session_scope(engine) as session:
        events = session.scalars(select(ConsentEvent).where(ConsentEvent.customer_id == "C7")).all()
        assert [(e.scope, e.choice, e.source) for e in events] == [("all", "opt_out", "erasure-tombstone")]
    day = date(2026, 4, 20)
    add_candidates(engine, day, ("C7", "KIDS_SAVINGS"))
    decide_day(engine, day, subject_seed.OFFERS, now=subject_seed._noon(day))
    with engine.connect() as conn:
        reason = conn.execute(text("SELECT outcome, reason FROM decisions WHERE customer_id = 'C7'")).one()
    assert tuple(reason) == ("suppressed", "opted_out_global")


def test_a_trail_names_the_rule_that_decided():
    from outreach.models import Decision
    from outreach.subjects.export import _trail

    for reason, verdict in (("opted_out_global", "failed"), ("quiet_hours_held", "held")):
        trail = _trail(Decision(decision_date=date(2026, 3, 2), offer_code="X", outcome="o", reason=reason))
        verdicts = [r["verdict"] for r in trail["rules"]]
        decided = verdicts.index(verdict)
        assert set(verdicts[:decided]) <= {"passed"} and set(verdicts[decided + 1 :]) <= {"not reached"}
        assert reason in trail["rules"][decided]["rule"].split("|")
