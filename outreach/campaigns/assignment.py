"""Deterministic assignment: control group, variant and budget order from a hash of campaign and customer.

A rerun, a second worker or next week's report computes the same arm for the same customer, with no
state to keep in step. Each purpose hashes with its own label, so being in the control group says
nothing about the variant one would have had, nor about one's place in the budget queue.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

CONTROL = "control"
TREATMENT = "treatment"
_SCALE = float(2**64)


def unit(campaign: str, customer_id: str, purpose: str) -> float:
    """A number in [0, 1), uniform over customers, fixed for (campaign, customer, purpose)."""
    digest = hashlib.blake2b(f"{campaign}\x1f{purpose}\x1f{customer_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


def arm(campaign: str, customer_id: str, holdout: float) -> str:
    """``control`` for a share ``holdout`` (0..1) of customers, else ``treatment``."""
    return CONTROL if unit(campaign, customer_id, "holdout") < holdout else TREATMENT


def variant(campaign: str, customer_id: str, split: Sequence[tuple[str, float]]) -> str:
    """The variant whose slice of [0, 100) holds the customer's point; ``split`` is (name, percent)."""
    point = unit(campaign, customer_id, "variant") * 100
    edge = 0.0
    for name, percent in split:
        edge += percent
        if point < edge:
            return name
    return split[-1][0]  # percentages that add up to 99.999... by rounding


def budget_order(campaign: str, customer_id: str) -> float:
    """Where the customer stands in the queue when a budget cannot take everyone: random, not by id."""
    return unit(campaign, customer_id, "order")


@dataclass(frozen=True, slots=True)
class Assignment:
    customer_id: str
    arm: str
    variant: str | None  # None in the control group


def assign(
    campaign: str, customer_ids: Sequence[str], holdout: float, split: Sequence[tuple[str, float]]
) -> list[Assignment]:
    """Arm and variant for each customer, in the order given."""
    result = []
    for customer_id in customer_ids:
        which = arm(campaign, customer_id, holdout)
        result.append(
            Assignment(
                customer_id, which, variant(campaign, customer_id, split) if which == TREATMENT else None
            )
        )
    return result
