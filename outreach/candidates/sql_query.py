"""Candidates from a SQL query against a warehouse: a SQLAlchemy URL and the query text, which may
use ``:run_date``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from outreach.candidates.base import ORIGIN_FILE, ORIGIN_ROW, REQUIRED_COLUMNS, CandidateSourceError
from outreach.db import make_engine
from outreach.pii import scrub


class SqlQuery:
    """``SqlQuery("postgresql+psycopg://dwh/marts", "select ... where day = :run_date")``: the
    result must have the columns customer_id, offer_code and score (trigger, trigger_ref and
    candidate_date are optional). Rows are streamed, never all held at once."""

    name = "sql"

    def __init__(
        self, url: str | None, query: str, *, engine: Engine | None = None, chunk_rows: int = 5000
    ) -> None:
        if url is None and engine is None:
            raise ValueError("SqlQuery needs a database URL or an engine")
        self.url = url
        self.query = query
        self.engine = engine
        self.chunk_rows = chunk_rows

    def chunks(self, run_date: date) -> Iterator[list[dict[str, Any]]]:
        engine = self.engine or make_engine(self.url)
        statement = text(self.query)
        params = {"run_date": run_date} if "run_date" in statement.compile().params else {}
        label = "sql query"
        try:
            with engine.connect() as conn:
                result = conn.execution_options(stream_results=True, yield_per=self.chunk_rows).execute(
                    statement, params
                )
                names = result.keys()  # (iterating the result itself would consume rows)
                columns = [column.lower() for column in names]
                missing = [column for column in REQUIRED_COLUMNS if column not in columns]
                if missing:
                    raise CandidateSourceError(
                        f"{label}: the result has no column {', '.join(missing)}"
                        f" (it has {', '.join(columns)})"
                    )
                row_number = 0
                for partition in result.partitions():
                    chunk = []
                    for values in partition:
                        row_number += 1
                        chunk.append(
                            {
                                **dict(zip(columns, values, strict=True)),
                                ORIGIN_FILE: label,
                                ORIGIN_ROW: row_number,
                            }
                        )
                    yield chunk
        except SQLAlchemyError as exc:
            # the driver's message may quote data: mask it before it reaches a log
            raise CandidateSourceError(f"{label} failed: {scrub(str(exc.orig or exc))[:500]}") from exc
        finally:
            if self.engine is None:
                engine.dispose()
