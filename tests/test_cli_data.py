"""The data commands end to end: generate, import (exit codes, listed rejections), candidates, export."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import insert, select
from typer.testing import CliRunner

from outreach.cli import app
from outreach.config import get_settings
from outreach.db import make_engine
from outreach.models import Candidate, Decision
from tests.fixture_files import OFFERS_FILE
from tests.test_imports import CUSTOMER_HEADER

runner = CliRunner()
REPO_OFFERS = OFFERS_FILE


@pytest.fixture
def cli(sqlite_url, monkeypatch):
    monkeypatch.setenv("OUTREACH_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("OUTREACH_OFFERS_FILE", str(REPO_OFFERS))
    get_settings.cache_clear()
    yield lambda *args: runner.invoke(app, list(args), env={"COLUMNS": "200"})
    get_settings.cache_clear()


def test_import_lists_rejections_and_exits_1(cli, tmp_path):
    path = tmp_path / "customers.csv"
    path.write_text(
        CUSTOMER_HEADER
        + "C1,Jan,Jansen,nl,1980-01-02,+31612345678,jan@example.com,Weg,1,1234 AB,Utrecht,NL,,\n"
        + "C2,Piet,Pietersen,nl,1980-13-40,,,Weg,2,1234 AB,Utrecht,NL,,\n",
        encoding="utf-8",
    )
    result = cli("import", "customers", str(path))
    assert result.exit_code == 1, result.output
    assert "2 rows read, 1 imported (1 new, 0 updated, 0 already present), 1 rejected" in result.output
    assert "│ customers.csv │ 3   │ birth_date │ not a date (YYYY-MM-DD)" in result.output
    again = cli("import", "customers", str(path))
    assert "0 new, 0 updated, 1 already present" in again.output


def test_import_of_an_unreadable_file_exits_2(cli, tmp_path):
    path = tmp_path / "holdings.csv"
    path.write_text("customer,product\nC1,x\n", encoding="utf-8")
    result = cli("import", "holdings", str(path))
    assert result.exit_code == 2
    assert "holdings.csv: missing required column customer_id" in result.output


def test_generate_import_candidates_and_export(cli, sqlite_url, tmp_path):
    out = tmp_path / "bank"
    result = cli("generate", "--customers", "120", "--seed", "4", "--out", str(out), "--as-of", "2026-11-20")
    assert result.exit_code == 0, result.output
    assert (out / "transactions.csv").is_file()
    result = cli("import", "all", str(out))
    assert result.exit_code == 0, result.output
    assert "customers.csv: 120 rows read, 120 imported" in result.output
    result = cli("candidates", "--date", "2026-11-20")
    assert result.exit_code == 0, result.output
    assert "candidates 2026-11-20 from payment_signals:" in result.output
    # a decision for one of the day's candidates, as the policy engine would record it
    engine = make_engine(sqlite_url)
    with engine.begin() as conn:
        candidate = conn.execute(select(Candidate).order_by(Candidate.id).limit(1)).one()
        conn.execute(
            insert(Decision).values(
                candidate_id=candidate.id,
                decision_date=date(2026, 11, 20),
                customer_id=candidate.customer_id,
                offer_code=candidate.offer_code,
                outcome="planned",
                reason="ok",
                channel="email",
                decided_at=datetime(2026, 11, 20, 8, tzinfo=UTC),
            )
        )
    engine.dispose()
    export_file = tmp_path / "decisions.jsonl"
    result = cli(
        "export", "decisions", "--date", "2026-11-20", "--format", "jsonl", "--out", str(export_file)
    )
    assert result.exit_code == 0, result.output
    (decision,) = [json.loads(line) for line in export_file.read_text().splitlines()]
    assert (decision["customer_id"], decision["trigger_ref"]) == (
        candidate.customer_id,
        candidate.trigger_ref,
    )
    result = cli("export", "messages", "--date", "2026-11-20", "--format", "csv")
    assert result.exit_code == 0 and result.output.splitlines()[0].startswith("id,idempotency_key,")
    result = cli("generate", "--as-of", "20-11-2026")
    assert result.exit_code == 2 and "not a date" in result.output
