"""Candidates from a dated file drop: CSV (the import contract) or Parquet, found by a path pattern."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

from outreach.candidates.base import (
    CANDIDATE_COLUMNS,
    ORIGIN_FILE,
    ORIGIN_ROW,
    PROBLEM,
    PROBLEM_COLUMN,
    REQUIRED_COLUMNS,
    CandidateSourceError,
)
from outreach.imports.csvfile import ImportFileError, read_csv


class FileDrop:
    """``pattern`` names the day's file with ``{date}``: ``drops/candidates-{date}.csv`` (ISO date)
    or ``drops/{date:%Y%m%d}.parquet``. A pattern without ``{date}`` is one fixed file."""

    name = "file"

    def __init__(self, pattern: str | Path, chunk_rows: int = 5000) -> None:
        self.pattern = str(pattern)
        self.chunk_rows = chunk_rows

    def path_for(self, run_date: date) -> Path:
        try:
            return Path(self.pattern.format(date=run_date))
        except (KeyError, IndexError, ValueError) as exc:
            raise CandidateSourceError(
                f"candidate file pattern {self.pattern!r}: only {{date}} may be used ({exc})"
            ) from exc

    def chunks(self, run_date: date) -> Iterator[list[dict[str, Any]]]:
        path = self.path_for(run_date)
        if not path.is_file():
            raise CandidateSourceError(f"{path}: no candidate file for {run_date.isoformat()}")
        if path.suffix.lower() == ".parquet":
            yield from self._parquet(path)
        else:
            yield from self._csv(path)

    def _csv(self, path: Path) -> Iterator[list[dict[str, Any]]]:
        chunk: list[dict[str, Any]] = []
        try:
            for raw in read_csv(path, CANDIDATE_COLUMNS, REQUIRED_COLUMNS):
                origin = {ORIGIN_FILE: path.name, ORIGIN_ROW: raw.number}
                if raw.values is None:
                    chunk.append({**origin, PROBLEM: raw.problem, PROBLEM_COLUMN: raw.column})
                else:
                    chunk.append({**raw.values, **origin})
                if len(chunk) >= self.chunk_rows:
                    yield chunk
                    chunk = []
        except ImportFileError as exc:
            raise CandidateSourceError(str(exc)) from exc
        if chunk:
            yield chunk

    def _parquet(self, path: Path) -> Iterator[list[dict[str, Any]]]:
        import polars as pl

        try:
            schema = pl.read_parquet_schema(path)
        except Exception as exc:  # polars raises several error types for a damaged file
            raise CandidateSourceError(f"{path.name}: not a readable Parquet file ({exc})") from exc
        missing = [column for column in REQUIRED_COLUMNS if column not in schema]
        if missing:
            raise CandidateSourceError(f"{path.name}: missing required column {', '.join(missing)}")
        present = [column for column in CANDIDATE_COLUMNS if column in schema]
        row_number = 0  # Parquet has no header: row 1 is the first record
        batches = pl.scan_parquet(path).select(present).collect_batches(chunk_size=self.chunk_rows)
        for batch in batches:
            chunk = []
            for values in batch.iter_rows(named=True):
                row_number += 1
                chunk.append({**values, ORIGIN_FILE: path.name, ORIGIN_ROW: row_number})
            yield chunk
