"""The one interface every candidate source implements."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any, Protocol, runtime_checkable

from outreach.errors import InputError

# the fields of a candidate, in file order
CANDIDATE_COLUMNS = ("customer_id", "offer_code", "trigger", "trigger_ref", "score", "candidate_date")
REQUIRED_COLUMNS = ("customer_id", "offer_code", "score")

# optional keys a source may put on a row so a rejection can say where it came from
ORIGIN_FILE = "_file"
ORIGIN_ROW = "_row"
# set by a source when the record itself is unreadable (wrong number of fields, bad bytes)
PROBLEM = "_problem"
PROBLEM_COLUMN = "_problem_column"


class CandidateSourceError(InputError):
    """The source as a whole failed (file missing, a required column absent, query error)."""


@runtime_checkable
class CandidateSource(Protocol):
    """Yields a day's candidates in chunks of dicts with the keys of CANDIDATE_COLUMNS.

    Values may be text (files) or typed (queries); ``load_candidates`` checks every row the same
    way, whatever the source, and records why a row was rejected. ``candidate_date`` may be left
    empty: it defaults to the run date.
    """

    name: str  # stored in candidates.source

    def chunks(self, run_date: date) -> Iterator[list[dict[str, Any]]]: ...
