"""The one writer behind every export a person opens in a spreadsheet."""

from __future__ import annotations

import csv
import io

import pytest
from openpyxl import load_workbook

from outreach import spreadsheets


@pytest.mark.parametrize("text", ["=1+1", "+A1", "-A1+B2", "@SUM(1+1)", "\t=1+1", "\r=1+1", "-", "+"])
def test_every_formula_start_is_quoted(text):
    assert spreadsheets.inert(text) == "'" + text


@pytest.mark.parametrize(
    "value", ["+31612345678", "-12.50", "12", "a=b", "", None, 3, -4.5, "'=quoted already"]
)
def test_numbers_and_plain_text_stay_as_they_are(value):
    assert spreadsheets.inert(value) == value


def test_csv_and_xlsx_read_back(tmp_path):
    rows = [{"ref": '=HYPERLINK("http://evil.example")', "n": 1, "none": None}]
    out = io.StringIO()
    assert spreadsheets.write_csv(out, ["ref", "n", "none"], rows) == 1
    assert list(csv.DictReader(io.StringIO(out.getvalue()))) == [
        {"ref": '\'=HYPERLINK("http://evil.example")', "n": "1", "none": ""}
    ]
    path = tmp_path / "rows.xlsx"
    assert spreadsheets.write_xlsx(path, ["ref", "n"], rows, title="rows") == 1
    sheet = load_workbook(path)["rows"]
    assert sheet["A2"].value == rows[0]["ref"] and sheet["A2"].data_type == "s" and sheet["B2"].value == 1
