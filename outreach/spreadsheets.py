"""Rows that people open in a spreadsheet, as CSV or Excel: no cell is ever run as a formula.

Every export that a person may open in Excel or LibreOffice writes through here. A cell starting
with = + - @, a tab or a carriage return is a formula to a spreadsheet (OWASP, "CSV Injection"):
it gets a leading apostrophe, which spreadsheets show as text. Plain numbers ("+31612345678",
"-12.50") are left as they are: they compute nothing. (defusedcsv leaves tabs and carriage returns
through and quotes phone numbers, hence these few lines of our own.)
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from openpyxl import Workbook
from openpyxl.styles import Font

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?\d+([.,]\d+)?")


def inert(value: Any) -> Any:
    """The value as a spreadsheet must show it: text that could start a formula is quoted."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def write_csv(out: TextIO, columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> int:
    """Header and rows to ``out`` (None as an empty cell); returns the number of rows written."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    count = 0
    for row in rows:
        writer.writerow(["" if row[c] is None else inert(row[c]) for c in columns])
        count += 1
    return count


def write_xlsx(path: Path, columns: Sequence[str], rows: Iterable[Mapping[str, Any]], title: str) -> int:
    """One sheet with a bold, frozen header; every text cell is typed as text, never as a formula."""
    book = Workbook()
    sheet = book.active
    sheet.title = title
    sheet.append(list(columns))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    count = 0
    for row in rows:
        sheet.append([row[c] for c in columns])
        for cell in sheet[sheet.max_row]:
            if isinstance(cell.value, str):
                cell.data_type = "s"  # a leading "=" stays text
        count += 1
    sheet.freeze_panes = "A2"
    book.save(path)
    return count
