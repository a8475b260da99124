"""Importing one of the bank's files (customers, transactions, consents, suppressions, holdings)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine

from outreach.imports.contracts import Contract
from outreach.imports.csvfile import read_csv
from outreach.imports.fields import RowCheck
from outreach.imports.report import ImportReport, Rejection, rejection_for, store_rejections
from outreach.imports.writer import CHUNK_ROWS, write_chunk

Progress = Callable[[int], None]  # called with the number of rows read so far


def import_table(
    engine: Engine, contract: Contract, path: str | Path, on_progress: Progress | None = None
) -> ImportReport:
    """Read, check and write ``path`` in one transaction: a file is imported whole or not at all
    (rejected rows are part of the result, not a failure)."""
    path = Path(path)
    report = ImportReport(contract.kind, path.name)
    rows = read_csv(path, contract.columns, contract.required)
    pending_rejections: list[Rejection] = []
    with engine.begin() as conn:
        chunk: list[dict] = []
        for raw in rows:
            report.rows_read += 1
            if raw.values is None:
                rejection = Rejection(path.name, raw.number, raw.column, raw.problem)
            else:
                check = RowCheck(raw.values)
                row = contract.convert(check)
                if not check.errors:
                    if contract.kind == "consents":  # who changed it: this file, this row
                        row |= {
                            "actor_kind": "import",
                            "actor": f"{path.name}:{raw.number}"[:128],
                            "request_id": report.batch_id,
                        }
                    chunk.append(row)
                    for flag in contract.flags(row, check):
                        report.flag(flag)
                    if len(chunk) >= CHUNK_ROWS:
                        _flush(conn, contract, chunk, report)
                        chunk = []
                        if on_progress:
                            on_progress(report.rows_read)
                    continue
                rejection = rejection_for(path.name, raw.number, check.errors, contract.columns)
            report.reject(rejection)
            pending_rejections.append(rejection)
            if len(pending_rejections) >= CHUNK_ROWS:
                store_rejections(conn, report.batch_id, contract.kind, pending_rejections)
                pending_rejections = []
        _flush(conn, contract, chunk, report)
        store_rejections(conn, report.batch_id, contract.kind, pending_rejections)
    if on_progress:
        on_progress(report.rows_read)
    return report


def _flush(conn, contract: Contract, chunk: list[dict], report: ImportReport) -> None:
    counts = write_chunk(conn, contract.spec, chunk)
    report.inserted += counts.inserted
    report.updated += counts.updated
    report.already_present += counts.already_present
