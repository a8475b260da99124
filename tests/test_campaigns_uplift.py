"""The uplift statistics recover a known synthetic effect within their interval."""

from __future__ import annotations

import numpy as np
import pytest

from outreach.campaigns.report import uplift

BASE, EFFECT = 0.04, 0.02  # control converts at 4%, treatment at 6%


def test_recovers_a_known_effect_within_its_interval():
    rng = np.random.default_rng(20261121)
    n_t, n_c = 40_000, 10_000
    converted_t = int(rng.binomial(n_t, BASE + EFFECT))
    converted_c = int(rng.binomial(n_c, BASE))
    result = uplift(converted_t, n_t, converted_c, n_c)
    assert result is not None
    assert result.low < EFFECT < result.high
    assert result.low > 0  # and the effect is found: the interval excludes zero
    assert result.p_value < 0.001
    assert result.difference == pytest.approx(converted_t / n_t - converted_c / n_c)
    # the interval is as wide as the sample says: about 2 x 1.96 standard errors
    se = np.sqrt((BASE + EFFECT) * (1 - BASE - EFFECT) / n_t + BASE * (1 - BASE) / n_c)
    assert result.high - result.low == pytest.approx(2 * 1.96 * se, rel=0.1)


def test_the_interval_covers_the_true_effect_about_95_percent_of_the_time():
    rng = np.random.default_rng(7)
    runs, covered = 400, 0
    for _ in range(runs):
        n_t, n_c = 3_000, 800
        result = uplift(int(rng.binomial(n_t, BASE + EFFECT)), n_t, int(rng.binomial(n_c, BASE)), n_c)
        covered += result.low <= EFFECT <= result.high
    # binomial(400, 0.95) lies in [366, 394] with probability > 0.999
    assert 366 <= covered <= 394, covered


def test_no_effect_is_not_called_an_effect_and_empty_groups_give_none():
    rng = np.random.default_rng(11)
    n = 20_000
    result = uplift(int(rng.binomial(n, BASE)), n, int(rng.binomial(n, BASE)), n)
    assert result.low < 0 < result.high and result.p_value > 0.01
    assert uplift(0, 0, 5, 100) is None and uplift(5, 100, 0, 0) is None
    zero = uplift(0, 500, 0, 100)  # nobody converted anywhere: an interval around zero, no crash
    assert zero.difference == 0 and zero.low < 0 < zero.high
