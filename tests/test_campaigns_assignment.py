"""Control-group and variant assignment: pure functions, stable, and matching the configured shares."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from outreach.campaigns.assignment import CONTROL, TREATMENT, arm, assign, budget_order, unit, variant

N = 100_000
CUSTOMERS = [f"C{i:07d}" for i in range(1, N + 1)]
SPLIT = [("A", 50.0), ("B", 30.0), ("C", 20.0)]


def within(count: int, n: int, share: float, sigmas: float = 4.5) -> bool:
    """``count`` of ``n`` is within ``sigmas`` binomial standard deviations of ``share``."""
    return abs(count - n * share) <= sigmas * math.sqrt(n * share * (1 - share))


@pytest.fixture(scope="module")
def assigned():
    return assign("spring-savings", CUSTOMERS, 0.10, SPLIT)


def test_shares_match_the_configuration_within_sampling_error(assigned):
    arms = Counter(a.arm for a in assigned)
    assert arms[CONTROL] + arms[TREATMENT] == N
    assert within(arms[CONTROL], N, 0.10), arms
    treated = [a for a in assigned if a.arm == TREATMENT]
    variants = Counter(a.variant for a in treated)
    assert set(variants) == {"A", "B", "C"}
    for name, percent in SPLIT:
        assert within(variants[name], len(treated), percent / 100), variants
    assert all(a.variant is None for a in assigned if a.arm == CONTROL)


def test_stable_across_reruns_and_input_order(assigned):
    shuffled = CUSTOMERS[:]
    random.Random(3).shuffle(shuffled)
    again = {a.customer_id: (a.arm, a.variant) for a in assign("spring-savings", shuffled, 0.10, SPLIT)}
    assert {a.customer_id: (a.arm, a.variant) for a in assigned} == again


def test_each_campaign_draws_its_own_control_group():
    first = {c for c in CUSTOMERS[:20_000] if arm("one", c, 0.2) == CONTROL}
    second = {c for c in CUSTOMERS[:20_000] if arm("two", c, 0.2) == CONTROL}
    overlap = len(first & second)
    # independent draws: about 0.2 * 0.2 of customers are in both control groups
    assert within(overlap, 20_000, 0.04), overlap


def test_arm_variant_and_budget_order_are_independent():
    """Being in the control group says nothing about the variant or the place in the budget queue."""
    control = [c for c in CUSTOMERS if arm("x", c, 0.5) == CONTROL]
    variants = Counter(variant("x", c, [("A", 50.0), ("B", 50.0)]) for c in control)
    assert within(variants["A"], len(control), 0.5)
    early = sum(budget_order("x", c) < 0.25 for c in control)
    assert within(early, len(control), 0.25)


def test_unit_is_uniform_and_shares_at_the_edges():
    values = [unit("x", c, "holdout") for c in CUSTOMERS]
    assert min(values) >= 0 and max(values) < 1
    deciles = Counter(int(v * 10) for v in values)
    for decile in range(10):
        assert within(deciles[decile], N, 0.1), deciles
    assert all(arm("x", c, 0.0) == TREATMENT for c in CUSTOMERS[:1000])
    assert all(variant("x", c, [("only", 100.0)]) == "only" for c in CUSTOMERS[:1000])
    # percentages that add up to 100 only after rounding still always give a variant
    thirds = [("a", 33.333333), ("b", 33.333333), ("c", 33.333333)]
    assert {variant("x", c, thirds) for c in CUSTOMERS[:3000]} == {"a", "b", "c"}
