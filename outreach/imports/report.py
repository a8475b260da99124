"""What an import or a candidate load tells its caller: counts that add up, and the rejections."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Connection, insert

from outreach.models import ImportRejection

KEEP_IN_REPORT = 1000  # rejections carried in memory; all of them are stored in import_rejections


@dataclass(frozen=True, slots=True)
class Rejection:
    file: str
    row: int
    column: str
    reason: str  # personal values already masked

    def __str__(self) -> str:
        return f"{self.file} row {self.row}, column {self.column}: {self.reason}"


def rejection_for(file: str, row: int, errors: list[tuple[str, str]], order: tuple[str, ...]) -> Rejection:
    """One rejection per row: the first bad column (in contract order) and every further problem."""
    position = {column: index for index, column in enumerate(order)}
    errors = sorted(errors, key=lambda e: position.get(e[0], -1))
    column, reason = errors[0]
    if len(errors) > 1:
        reason += "; also " + "; ".join(f"{c}: {r}" for c, r in errors[1:])
    return Rejection(file, row, column, reason)


def new_batch_id() -> str:
    return uuid.uuid4().hex


@dataclass
class ImportReport:
    """rows_read = inserted + updated + already_present + rejected, always."""

    kind: str
    file: str
    batch_id: str = field(default_factory=new_batch_id)
    rows_read: int = 0
    inserted: int = 0
    updated: int = 0
    already_present: int = 0
    rejected: int = 0
    flagged: dict[str, int] = field(default_factory=dict)  # e.g. mobile_invalid: imported, marked
    rejections: list[Rejection] = field(default_factory=list)  # the first KEEP_IN_REPORT
    warnings: list[str] = field(default_factory=list)  # about the file, not a row: nothing rejected

    @property
    def imported(self) -> int:
        return self.inserted + self.updated + self.already_present

    @property
    def balanced(self) -> bool:
        return self.rows_read == self.imported + self.rejected

    def reject(self, rejection: Rejection) -> None:
        self.rejected += 1
        if len(self.rejections) < KEEP_IN_REPORT:
            self.rejections.append(rejection)

    def unknown_columns(self, columns: list[str]) -> None:
        self.warnings.append(f"{self.file}: unknown column(s) ignored: {', '.join(columns)}")

    def flag(self, name: str) -> None:
        self.flagged[name] = self.flagged.get(name, 0) + 1

    def summary(self) -> str:
        text = (
            f"{self.file}: {self.rows_read} rows read, {self.imported} imported "
            f"({self.inserted} new, {self.updated} updated, {self.already_present} already present), "
            f"{self.rejected} rejected"
        )
        if self.flagged:
            text += "; imported but marked: " + ", ".join(f"{k} {v}" for k, v in sorted(self.flagged.items()))
        return "\n".join([text, *(f"warning: {w}" for w in self.warnings)])


def store_rejections(conn: Connection, batch_id: str, kind: str, rejections: Iterable[Rejection]) -> None:
    now = datetime.now(UTC)
    rows = [
        {
            "batch_id": batch_id,
            "kind": kind,
            "file": r.file[:255],
            "row_number": r.row,
            "column_name": r.column[:64],
            "reason": r.reason,
            "imported_at": now,
        }
        for r in rejections
    ]
    if rows:
        conn.execute(insert(ImportRejection), rows)
