"""Importing the bank's CSV files: ``import_file(engine, kind, path)`` and ``import_directory``.

Kinds and their column contracts are in ``outreach.imports.contracts`` (customers, transactions,
consents, suppressions, holdings) and ``outreach.candidates`` (candidates). Each bad row is rejected
with the file, the row, the column and why, stored in ``import_rejections``, and counted:
rows read = rows imported + rows rejected, always.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from sqlalchemy import Engine

from outreach.candidates.base import CandidateSourceError
from outreach.candidates.file_drop import FileDrop
from outreach.candidates.loader import load_candidates
from outreach.imports.bank import import_table
from outreach.imports.contracts import CONTRACTS
from outreach.imports.csvfile import ImportFileError
from outreach.imports.report import ImportReport

# the order a folder is imported in: customers first, so everything else refers to known people
KINDS = ("customers", "transactions", "consents", "suppressions", "holdings", "candidates")

__all__ = ["KINDS", "ImportFileError", "ImportReport", "import_directory", "import_file"]


def import_file(
    engine: Engine,
    kind: str,
    path: str | Path,
    *,
    offer_codes: Iterable[str] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import one CSV file of ``kind``. Raises ImportFileError when the file as a whole cannot be
    read (missing, no header, a required column absent); rejected rows are in the report.
    ``offer_codes`` (candidates only) rejects rows naming an offer that is not configured."""
    if kind not in KINDS:
        raise ImportFileError(f"unknown import kind {kind!r}: use one of {', '.join(KINDS)}")
    if kind != "candidates":
        return import_table(engine, CONTRACTS[kind], path, on_progress)
    path = Path(path)
    if not path.is_file():
        raise ImportFileError(f"{path}: file not found")
    try:
        # the pattern is the path itself: no {date} in it (braces in a name are escaped)
        source = FileDrop(str(path).replace("{", "{{").replace("}", "}}"))
        loaded = load_candidates(engine, None, source, offer_codes=offer_codes, on_progress=on_progress)
    except CandidateSourceError as exc:
        raise ImportFileError(str(exc)) from exc
    report = ImportReport("candidates", path.name, batch_id=loaded.batch_id)
    report.rows_read = loaded.rows_read
    report.inserted = loaded.loaded
    report.already_present = loaded.duplicates
    report.rejected = loaded.rejected
    report.rejections = loaded.rejections
    return report


def import_directory(
    engine: Engine, folder: str | Path, *, offer_codes: Iterable[str] | None = None
) -> dict[str, ImportReport]:
    """Import every ``<kind>.csv`` found in ``folder`` (customers first); kinds without a file are
    skipped. Returns the report of each file imported, by kind."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ImportFileError(f"{folder}: not a folder")
    reports: dict[str, ImportReport] = {}
    for kind in KINDS:
        path = folder / f"{kind}.csv"
        if path.is_file():
            reports[kind] = import_file(engine, kind, path, offer_codes=offer_codes)
    if not reports:
        raise ImportFileError(f"{folder}: no import files ({', '.join(k + '.csv' for k in KINDS)})")
    return reports
