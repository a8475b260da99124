"""Offer candidates: where they come from (a file drop, a SQL query, the bank's payment signals)
and how a day's candidates are loaded into the ``candidates`` table."""

from outreach.candidates.base import CandidateSource, CandidateSourceError
from outreach.candidates.file_drop import FileDrop
from outreach.candidates.loader import LoadReport, load_candidates
from outreach.candidates.payment_signals import PaymentSignals
from outreach.candidates.sql_query import SqlQuery

__all__ = [
    "CandidateSource",
    "CandidateSourceError",
    "FileDrop",
    "LoadReport",
    "PaymentSignals",
    "SqlQuery",
    "load_candidates",
]
