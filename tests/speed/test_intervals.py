"""The protocol's statistics on synthetic window times: intervals against closed forms, the
verdict rule, the noise floor."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.measure.intervals import (
    floor_as_percent,
    geometric_mean_interval,
    median_interval,
    noise_floor,
    paired_ratios,
    ratio_interval,
    verdict,
)
from harness.measure.speed_records import Comparison, Estimate


def test_median_interval_matches_the_normal_closed_form() -> None:
    """For n normal samples the median's standard error is sqrt(pi/2) * sigma / sqrt(n): the
    95 % bootstrap interval's half-width is 1.96 times that (within the bootstrap's own
    error, a few per cent at n = 400)."""
    rng = np.random.default_rng(1)
    sigma, n = 2.0, 400
    values = rng.normal(100.0, sigma, n)
    estimate = median_interval(values)
    expected = 1.96 * math.sqrt(math.pi / 2) * sigma / math.sqrt(n)
    half_width = (estimate.ci_high - estimate.ci_low) / 2
    assert estimate.ci_low < estimate.estimate < estimate.ci_high
    assert half_width == pytest.approx(expected, rel=0.25)
    assert estimate.n == n


def test_median_interval_covers_the_true_median_about_95_percent() -> None:
    rng = np.random.default_rng(2)
    covered = sum(lo <= 1.0 <= hi for lo, hi in (
        (e.ci_low, e.ci_high) for e in (median_interval(rng.lognormal(0, 0.1, 25))
                                        for _ in range(200))))
    assert 0.88 <= covered / 200 <= 0.99


def test_constant_values_have_no_spread_and_bad_values_are_refused() -> None:
    estimate = median_interval([2.0, 2.0, 2.0])
    assert (estimate.ci_low, estimate.estimate, estimate.ci_high) == (2.0, 2.0, 2.0)
    with pytest.raises(ValueError):
        median_interval([])
    with pytest.raises(ValueError):
        median_interval([1.0, math.nan])


def test_paired_ratios_need_equal_counts_and_positive_times() -> None:
    assert paired_ratios([2.0, 3.0], [1.0, 1.5]).tolist() == [2.0, 2.0]
    with pytest.raises(ValueError):
        paired_ratios([1.0, 2.0], [1.0])
    with pytest.raises(ValueError):
        paired_ratios([1.0, 0.0], [1.0, 1.0])


def _ratio(true_ratio: float, spread: float, n: int = 7, seed: int = 0) -> Estimate:
    """A comparison's ratio from windows whose machine speed drifts by 20 % over the run
    (hitting both sides of a pair alike) with `spread` independent noise per window."""
    rng = np.random.default_rng(seed)
    drift = np.linspace(1.0, 1.2, n)
    b = 0.01 * drift * rng.lognormal(0, spread, n)
    a = 0.01 * true_ratio * drift * rng.lognormal(0, spread, n)
    return ratio_interval(a, b)


def _aa(seed: int) -> Comparison:
    ratio = _ratio(1.0, 0.02, seed=seed)
    per = Estimate(estimate=0.01, ci_low=0.01, ci_high=0.01, n=7)
    return Comparison(kind="training", a="torch#1", b="torch#2", unit="step", batch_size=128,
                      units_per_window={}, warmup_seconds={}, windows=[],
                      a_seconds_per_unit=per, b_seconds_per_unit=per, ratio=ratio, busy=False,
                      aa=True)


def test_a_clear_ratio_with_a_tight_spread_is_a_verdict() -> None:
    floor = noise_floor([_aa(seed) for seed in range(3)])
    assert floor is not None and 0 < floor < math.log(1.1)
    slower = _ratio(1.3, 0.02)
    assert slower.ci_low > 1.2 and verdict(slower, floor) == "slower"
    assert verdict(_ratio(1 / 1.3, 0.02), floor) == "faster"


def test_an_aa_comparison_is_within_noise() -> None:
    floor = noise_floor([_aa(seed) for seed in range(3)])
    for seed in range(10, 15):
        assert verdict(_ratio(1.0, 0.02, seed=seed), floor) == "within noise"


def test_a_ratio_inside_the_floor_is_within_noise_even_if_its_interval_excludes_one() -> None:
    """The negative control of the rule: 1.03x with a tight interval, on a machine whose A/A
    comparisons reach 5 % from 1, is not a verdict."""
    tight = Estimate(estimate=1.03, ci_low=1.02, ci_high=1.04, n=7)
    assert verdict(tight, math.log(1.05)) == "within noise"
    assert verdict(tight, math.log(1.01)) == "slower"
    assert verdict(tight, None) == "within noise"  # no floor measured: no verdict
    assert floor_as_percent(math.log(1.05)) == "±5.0 %"
    assert floor_as_percent(None) == "not measured"


def test_geometric_mean_over_specs() -> None:
    groups = [[2.0] * 5, [0.5] * 5]
    assert geometric_mean_interval(groups).estimate == pytest.approx(1.0)
    rng = np.random.default_rng(3)
    noisy = [1.2 * rng.lognormal(0, 0.05, 7) for _ in range(10)]
    estimate = geometric_mean_interval(noisy)
    assert estimate.ci_low < 1.2 < estimate.ci_high and estimate.n == 10
    assert estimate.ci_high / estimate.ci_low < 1.1
    with pytest.raises(ValueError):
        geometric_mean_interval([])
