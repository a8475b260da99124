"""Eligibility, contact policy and arbitration: set-based over the whole day's candidates."""

from outreach.policy.engine import REASONS, decide
from outreach.policy.inputs import DayInputs, load_inputs

__all__ = ["REASONS", "DayInputs", "decide", "load_inputs"]
