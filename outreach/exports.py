"""Exports that compliance (and tests) read back: a day's decisions or ledger messages as CSV or
JSON Lines, streamed row by row so a day of millions does not sit in memory.

Decisions and messages hold customer ids, never contact data; the free-text columns (a decision's
detail, a provider's error text) are scrubbed of phone numbers, email addresses and IBANs anyway.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, TextIO

from sqlalchemy import Engine, Select, select

from outreach import spreadsheets
from outreach.models import Candidate, Decision, Message
from outreach.pii import scrub

KINDS = ("decisions", "messages")
FORMATS = ("csv", "jsonl")
FREE_TEXT = {"detail", "last_error"}  # may quote a provider or an agent: scrubbed on the way out
YIELD_ROWS = 2000


def _query(kind: str, day: date) -> Select:
    if kind == "decisions":
        decisions = Decision.__table__
        candidates = Candidate.__table__
        # why this customer: the trigger and its reference travel with each decision
        return (
            select(
                decisions,
                candidates.c.trigger,
                candidates.c.trigger_ref,
                candidates.c.score,
                candidates.c.source.label("candidate_source"),
            )
            .select_from(decisions.outerjoin(candidates, candidates.c.id == decisions.c.candidate_id))
            .where(decisions.c.decision_date == day)
            .order_by(decisions.c.id)
        )
    if kind == "messages":
        messages = Message.__table__
        return select(messages).where(messages.c.run_date == day).order_by(messages.c.id)
    raise ValueError(f"unknown export {kind!r}: use {' or '.join(KINDS)}")


def _plain(name: str, value: Any) -> Any:
    """A JSON-friendly value: ISO dates, UTC timestamps, numbers as numbers, free text scrubbed."""
    if isinstance(value, datetime):
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, str) and name in FREE_TEXT:
        return scrub(value)
    return value


def columns(kind: str) -> list[str]:
    return [column.name for column in _query(kind, date.today()).selected_columns]


def rows(engine: Engine, kind: str, day: date) -> Iterator[dict[str, Any]]:
    query = _query(kind, day)
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=YIELD_ROWS).execute(query)
        names = list(result.keys())
        for row in result:
            yield {name: _plain(name, value) for name, value in zip(names, row, strict=True)}


def write(engine: Engine, kind: str, day: date, fmt: str, out: TextIO) -> int:
    """Write the day's ``kind`` to ``out`` in ``fmt``; returns the number of rows written."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: use {' or '.join(FORMATS)}")
    if fmt == "csv":  # opened in spreadsheets: a trigger_ref like "=HYPERLINK(...)" must stay text
        return spreadsheets.write_csv(out, columns(kind), rows(engine, kind, day))
    count = 0
    for row in rows(engine, kind, day):
        out.write(json.dumps(row, ensure_ascii=False, sort_keys=False) + "\n")
        count += 1
    return count
