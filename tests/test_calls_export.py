"""The dialler export: CSV and Excel, read back; data minimisation; no spreadsheet formulas."""

from __future__ import annotations

import csv

import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from outreach.calls import export, tasks
from outreach.calls.accounts import AccountError
from outreach.db import session_scope
from outreach.rendering import Renderer
from tests.calls_support import (  # noqa: F401 (cheap_hashing is a fixture)
    OFFERS,
    REPO,
    TUESDAY,
    Person,
    add_team_and_agents,
    call_day,
    cheap_hashing,
)
from tests.fixture_files import OFFERS_FILE

PEOPLE = [
    Person("C1", first_name="Anna", last_name="de Vries", score=0.2),
    Person(
        "C2", first_name='=HYPERLINK("http://x")', last_name="Bakker", score=0.9, offer_code="KIDS_SAVINGS"
    ),
    Person("C3", first_name="Joe", last_name="Smith", language="en", timezone="Europe/London"),
]

pytestmark = pytest.mark.usefixtures("cheap_hashing")


@pytest.fixture
def day(engine):
    add_team_and_agents(engine, "nl-1", "nl", 10, ["jan"])
    add_team_and_agents(engine, "en-1", "en", 10, ["joe"])
    call_day(engine, TUESDAY, PEOPLE)
    tasks.create_tasks(engine, TUESDAY, offers=OFFERS)
    return engine


def _rows(engine, team: str) -> list[dict]:
    with session_scope(engine) as session:
        return export.call_list(session, TUESDAY, team, OFFERS, Renderer(REPO / "templates"))


def test_the_call_list_is_best_first_with_script_and_nothing_more(day):
    rows = _rows(day, "nl-1")
    assert [r["last_name"] for r in rows] == ["Bakker", "de Vries"]  # KIDS_SAVINGS has the higher priority
    assert [r["rank"] for r in rows] == [1, 2]
    first = rows[0]
    assert first["phone"].startswith("+316")
    assert first["script"].startswith("Goedendag")
    assert "bezwaar" in first["script"]  # the mandatory notice ends every script
    assert (first["call_from"], first["call_until"]) == ("2026-11-24 09:00", "2026-11-24 20:00")
    assert set(first) == set(export.COLUMNS)  # no customer id, email, address or amounts
    (london,) = _rows(day, "en-1")
    assert london["script"].startswith("Good day") and london["timezone"] == "Europe/London"


def test_csv_reads_back_and_formulas_are_inert(day, tmp_path):
    path = export.write(_rows(day, "nl-1"), tmp_path / "nl.csv", "csv")
    with path.open(encoding="utf-8", newline="") as handle:
        back = list(csv.DictReader(handle))
    assert list(back[0]) == list(export.COLUMNS)
    assert [r["last_name"] for r in back] == ["Bakker", "de Vries"]
    assert back[0]["first_name"] == '\'=HYPERLINK("http://x")'  # a spreadsheet shows it, never runs it
    assert back[1]["phone"].startswith("+316")  # a phone number keeps its plus
    assert "\n" in back[0]["script"]  # multi-line scripts survive quoting


def test_xlsx_reads_back_with_text_cells(day, tmp_path):
    rows = _rows(day, "nl-1")
    path = export.write(rows, tmp_path / "nl.xlsx", "xlsx")
    sheet = load_workbook(path).active
    values = list(sheet.iter_rows(values_only=True))
    assert values[0] == export.COLUMNS
    assert [dict(zip(export.COLUMNS, v, strict=True))["task_id"] for v in values[1:]] == [
        r["task_id"] for r in rows
    ]
    assert values[1][export.COLUMNS.index("script")] == rows[0]["script"]
    cell = sheet.cell(row=2, column=export.COLUMNS.index("first_name") + 1)
    assert cell.value == '=HYPERLINK("http://x")' and cell.data_type == "s"  # text, not a formula


def test_unknown_team_and_format_are_clear_errors(day, tmp_path):
    with pytest.raises(AccountError, match="no team named 'xx'"):
        _rows(day, "xx")
    with pytest.raises(export.ExportError, match="use csv or xlsx"):
        export.write([], tmp_path / "a.pdf", "pdf")


def test_cli_export_writes_the_file(sqlite_url, tmp_path, monkeypatch):
    from outreach.cli import app
    from outreach.config import get_settings
    from outreach.db import make_engine

    engine = make_engine(sqlite_url)
    add_team_and_agents(engine, "nl-1", "nl", 10, ["jan"])
    call_day(engine, TUESDAY, PEOPLE[:2])
    monkeypatch.setenv("OUTREACH_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("OUTREACH_OFFERS_FILE", str(OFFERS_FILE))
    monkeypatch.setenv("OUTREACH_TEMPLATES_DIR", str(REPO / "templates"))
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        created = runner.invoke(app, ["calls", "create", "--date", "2026-11-24"])
        assert created.exit_code == 0, created.output
        assert "2 call task(s) created" in created.output
        out = tmp_path / "list.xlsx"
        result = runner.invoke(
            app,
            [
                "calls",
                "export",
                "--date",
                "2026-11-24",
                "--team",
                "nl-1",
                "--format",
                "xlsx",
                "--out",
                str(out),
            ],
        )
        assert result.exit_code == 0, result.output
        assert len(list(load_workbook(out).active.iter_rows())) == 3
        bad = runner.invoke(app, ["calls", "export", "--team", "nl-1", "--format", "pdf"])
        assert bad.exit_code == 2 and "use csv or xlsx" in bad.output
    finally:
        get_settings.cache_clear()
        engine.dispose()
