"""Importing one of the bank's files (customers, transactions, consents, suppressions, holdings)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Connection, Engine, select

from outreach.imports.contracts import Contract
from outreach.imports.csvfile import read_csv
from outreach.imports.fields import RowCheck, shown
from outreach.imports.report import ImportReport, Rejection, rejection_for, store_rejections
from outreach.imports.writer import CHUNK_ROWS, one_of, write_chunk
from outreach.models import Customer
from outreach.subjects import tombstones

Progress = Callable[[int], None]  # called with the number of rows read so far


def import_table(
    engine: Engine, contract: Contract, path: str | Path, on_progress: Progress | None = None
) -> ImportReport:
    """Read, check and write ``path`` in one transaction: a file is imported whole or not at all
    (rejected rows are part of the result, not a failure)."""
    path = Path(path)
    report = ImportReport(contract.kind, path.name)
    rows = read_csv(path, contract.columns, contract.required, on_unknown_columns=report.unknown_columns)
    first_row: dict[tuple, int] = {}  # the once-per-file value of each row so far -> its row number
    pending_rejections: list[Rejection] = []

    def reject(rejection: Rejection) -> None:
        nonlocal pending_rejections
        report.reject(rejection)
        pending_rejections.append(rejection)
        if len(pending_rejections) >= CHUNK_ROWS:
            store_rejections(conn, report.batch_id, contract.kind, pending_rejections)
            pending_rejections = []

    with engine.begin() as conn:
        chunk: list[tuple[int, dict]] = []
        for raw in rows:
            report.rows_read += 1
            if raw.values is None:
                reject(Rejection(path.name, raw.number, raw.column, raw.problem))
                continue
            check = RowCheck(raw.values)
            row = contract.convert(check)
            if not check.errors and contract.once_per_file:
                _seen_once(check, row, raw.number, contract.once_per_file, first_row)
            if check.errors:
                reject(rejection_for(path.name, raw.number, check.errors, contract.columns))
                continue
            if contract.kind == "consents":  # who changed it: this file, this row
                row |= {
                    "actor_kind": "import",
                    "actor": f"{path.name}:{raw.number}"[:128],
                    "request_id": report.batch_id,
                }
            chunk.append((raw.number, row))
            for flag in contract.flags(row, check):
                report.flag(flag)
            if len(chunk) >= CHUNK_ROWS:
                _flush(conn, contract, chunk, report, reject)
                chunk = []
                if on_progress:
                    on_progress(report.rows_read)
        _flush(conn, contract, chunk, report, reject)
        store_rejections(conn, report.batch_id, contract.kind, pending_rejections)
    if on_progress:
        on_progress(report.rows_read)
    return report


def _seen_once(
    check: RowCheck, row: dict, number: int, columns: tuple[str, ...], first_row: dict[tuple, int]
) -> None:
    """A second row with the same value is refused: the file does not say which one is right."""
    key = tuple(row[c] for c in columns)
    if key in first_row:
        check.fail(columns[0], f"{shown(columns[0], str(key[0]))} is on row {first_row[key]} already")
    else:
        first_row[key] = number


def _flush(
    conn: Connection,
    contract: Contract,
    chunk: list[tuple[int, dict]],
    report: ImportReport,
    reject: Callable[[Rejection], None],
) -> None:
    if contract.needs_customer and chunk:
        wanted = list({row["customer_id"] for _, row in chunk})
        known = set(
            conn.scalars(select(Customer.customer_id).where(one_of(conn, Customer.customer_id, wanted)))
        )
        for number, row in chunk:
            if row["customer_id"] not in known:
                reason = f"no customer {shown('customer_id', row['customer_id'])} (import customers first)"
                reject(Rejection(report.file, number, "customer_id", reason))
        chunk = [(number, row) for number, row in chunk if row["customer_id"] in known]
    counts = write_chunk(conn, contract.spec, [row for _, row in chunk])
    if contract.kind == "customers":  # an erased customer imported again stays suppressed
        again = tombstones.reapply(conn, [row["customer_id"] for _, row in chunk])
        if again:
            flagged = report.flagged
            flagged["erased_before_suppressed"] = flagged.get("erased_before_suppressed", 0) + again
    report.inserted += counts.inserted
    report.updated += counts.updated
    report.already_present += counts.already_present
