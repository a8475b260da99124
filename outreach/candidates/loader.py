"""Loading a day's candidates into the ``candidates`` table: every row checked the same way whatever
its source, stored once (a rerun of the same day adds nothing), and every row accounted for."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine

from outreach.candidates.base import (
    CANDIDATE_COLUMNS,
    ORIGIN_FILE,
    ORIGIN_ROW,
    PROBLEM,
    PROBLEM_COLUMN,
    CandidateSource,
)
from outreach.imports.fields import RowCheck
from outreach.imports.report import (
    KEEP_IN_REPORT,
    Rejection,
    new_batch_id,
    rejection_for,
    store_rejections,
)
from outreach.imports.writer import CHUNK_ROWS, TableSpec, write_chunk
from outreach.models import Candidate

OFFER_CODE = re.compile(r"^[A-Z][A-Z0-9_]{1,39}$")
CANDIDATE_SPEC = TableSpec(
    Candidate.__table__,
    key=("candidate_date", "customer_id", "offer_code", "trigger", "trigger_ref"),
    lookup=("candidate_date", "customer_id"),
)
Progress = Callable[[int], None]


@dataclass
class LoadReport:
    """rows_read = loaded + duplicates + rejected, always."""

    run_date: date | None
    source: str
    batch_id: str = field(default_factory=new_batch_id)
    rows_read: int = 0
    loaded: int = 0
    duplicates: int = 0  # already stored (an earlier load of the day) or repeated in the source
    rejected: int = 0
    rejections: list[Rejection] = field(default_factory=list)  # the first KEEP_IN_REPORT

    @property
    def balanced(self) -> bool:
        return self.rows_read == self.loaded + self.duplicates + self.rejected

    def summary(self) -> str:
        day = self.run_date.isoformat() if self.run_date else "per row"
        return (
            f"candidates {day} from {self.source}: {self.rows_read} rows read, {self.loaded} loaded, "
            f"{self.duplicates} already present, {self.rejected} rejected"
        )


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def check_candidate(
    raw: dict[str, Any], run_date: date | None, source: str, offer_codes: frozenset[str] | None
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """A candidate row as stored, and the problems that reject it (empty when it is good)."""
    check = RowCheck({column: _as_text(raw.get(column)) for column in CANDIDATE_COLUMNS})
    offer_code = check.text("offer_code", required=True, max_len=40)
    if offer_code is not None:
        offer_code = offer_code.upper()
        if offer_codes is not None and offer_code not in offer_codes:
            check.fail("offer_code", f"unknown offer {offer_code!r} (not in the offers file)")
        elif not OFFER_CODE.match(offer_code):
            check.fail("offer_code", f"not an offer code {offer_code!r}")
    candidate_date = check.date("candidate_date", required=run_date is None) or run_date
    if run_date is not None and candidate_date is not None and candidate_date != run_date:
        check.fail("candidate_date", f"{candidate_date} is not the run date {run_date}")
    row = {
        "candidate_date": candidate_date,
        "customer_id": check.text("customer_id", required=True, max_len=32),
        "offer_code": offer_code,
        "trigger": check.text("trigger", max_len=64) or source,
        "trigger_ref": check.text("trigger_ref", max_len=64) or "",
        "score": check.fraction("score"),
        "source": source[:32],
    }
    return row, check.errors


def load_candidates(
    engine: Engine,
    run_date: date | None,
    source: CandidateSource,
    *,
    offer_codes: Iterable[str] | None = None,
    on_progress: Progress | None = None,
) -> LoadReport:
    """Store ``source``'s candidates for ``run_date`` (``None``: each row's own candidate_date, for
    ``outreach import candidates``). With ``offer_codes``, a row naming another offer is rejected.
    One transaction: a source that fails half-way stores nothing."""
    report = LoadReport(run_date, source.name)
    codes = frozenset(offer_codes) if offer_codes is not None else None
    rejections: list[Rejection] = []
    with engine.begin() as conn:
        pending: list[dict[str, Any]] = []
        for chunk in source.chunks(run_date):
            for raw in chunk:
                report.rows_read += 1
                origin = str(raw.get(ORIGIN_FILE) or source.name)
                number = int(raw.get(ORIGIN_ROW) or report.rows_read)
                if raw.get(PROBLEM):
                    errors = [(str(raw.get(PROBLEM_COLUMN) or "(row)"), str(raw[PROBLEM]))]
                else:
                    row, errors = check_candidate(raw, run_date, source.name, codes)
                    if not errors:
                        pending.append(row)
                        continue
                rejection = rejection_for(origin, number, errors, CANDIDATE_COLUMNS)
                report.rejected += 1
                if len(report.rejections) < KEEP_IN_REPORT:
                    report.rejections.append(rejection)
                rejections.append(rejection)
            if len(pending) >= CHUNK_ROWS:
                _flush(conn, pending, report)
                pending = []
            if len(rejections) >= CHUNK_ROWS:
                store_rejections(conn, report.batch_id, "candidates", rejections)
                rejections = []
            if on_progress:
                on_progress(report.rows_read)
        _flush(conn, pending, report)
        store_rejections(conn, report.batch_id, "candidates", rejections)
    return report


def _flush(conn, rows: list[dict[str, Any]], report: LoadReport) -> None:
    counts = write_chunk(conn, CANDIDATE_SPEC, rows)
    report.loaded += counts.inserted
    report.duplicates += counts.already_present + counts.updated
