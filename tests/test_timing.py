"""harness.measure.timing: the loop every runtime is timed with, its statistics and argument checks.

The loop's behaviour is tested on a fake clock that only the timed function moves: no test
here depends on how fast this (shared) machine happens to be.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from harness.measure.timing import LatencyStats, measure, median_confidence_interval


class FakeClock:
    """time.perf_counter_ns that stands still until a timed call moves it."""

    def __init__(self) -> None:
        self.now_ns = 0

    def __call__(self) -> int:
        return self.now_ns


class Counter:
    """A callable that counts its calls; each one takes `cost_ms` on `clock`."""

    def __init__(self, clock: FakeClock | None = None, cost_ms: float = 0.0) -> None:
        self.calls = 0
        self.clock = clock
        self.cost_ns = int(cost_ms * 1e6)

    def __call__(self) -> None:
        self.calls += 1
        if self.clock is not None:
            self.clock.now_ns += self.cost_ns


@pytest.fixture()
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(time, "perf_counter_ns", fake)
    return fake


def test_stats_from_known_samples() -> None:
    samples_ms = np.arange(1, 101, dtype=np.float64)  # 1..100 ms
    stats = LatencyStats.from_samples((samples_ms * 1e6).astype(np.int64), batch_size=32)
    assert stats.runs == 100
    assert stats.total_seconds == pytest.approx(5.050)
    assert stats.mean_ms == pytest.approx(50.5)
    assert stats.std_ms == pytest.approx(np.std(samples_ms, ddof=1))
    assert (stats.min_ms, stats.max_ms) == (1.0, 100.0)
    assert stats.p50_ms == pytest.approx(50.5)
    assert stats.p90_ms == pytest.approx(np.percentile(samples_ms, 90))
    assert stats.p99_ms == pytest.approx(np.percentile(samples_ms, 99))
    assert stats.throughput == pytest.approx(32 / 0.0505)
    record = stats.as_dict()
    assert record["p50_ms"] == stats.p50_ms and record["batch_size"] == 32
    assert set(record) == {"runs", "total_seconds", "mean_ms", "std_ms", "min_ms", "p50_ms",
                           "p90_ms", "p99_ms", "max_ms", "batch_size", "throughput",
                           "machine_load", "p50_ci_low_ms", "p50_ci_high_ms"}
    assert record["machine_load"] is None  # only a timed loop knows the machine's load


def test_single_sample_has_zero_std() -> None:
    stats = LatencyStats.from_samples([2_000_000], batch_size=1)
    assert stats.std_ms == 0.0 and stats.p50_ms == stats.p99_ms == 2.0


def test_min_runs_reached_with_warmup_untimed(clock: FakeClock) -> None:
    fn = Counter(clock, cost_ms=2.0)
    stats = measure(fn, batch_size=4, warmup=3, min_runs=5, min_seconds=0.0)
    assert stats.runs == 5  # both conditions met at the 5th call: no extra calls
    assert fn.calls == 3 + 5
    assert stats.min_ms == stats.p50_ms == stats.max_ms == 2.0  # each timed call, alone
    assert stats.total_seconds == pytest.approx(5 * 0.002)  # warm-up calls are not in it
    assert stats.throughput == pytest.approx(4 / 0.002)
    assert "noisy" in stats.machine_load


def test_min_seconds_keeps_timing_past_min_runs(clock: FakeClock) -> None:
    fn = Counter(clock, cost_ms=1.0)
    stats = measure(fn, batch_size=1, warmup=0, min_runs=1, min_seconds=0.02)
    assert stats.runs == fn.calls == 20 and stats.total_seconds == pytest.approx(0.02)


def test_max_seconds_caps_the_loop(clock: FakeClock) -> None:
    fn = Counter(clock, cost_ms=5.0)
    stats = measure(fn, batch_size=1, warmup=0, min_runs=10_000, min_seconds=0.0,
                    max_seconds=0.03)
    assert stats.runs == fn.calls == 6  # 6 x 5 ms reach the 30 ms cap


def test_fast_function_gives_finite_numbers() -> None:
    stats = measure(lambda: None, batch_size=8, warmup=1, min_runs=20, min_seconds=0.0)
    assert stats.runs == 20
    assert all(math.isfinite(v) for v in (stats.mean_ms, stats.p99_ms, stats.std_ms))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"batch_size": 0}, "batch_size must be a positive integer"),
    ({"batch_size": 2.0}, "batch_size must be a positive integer"),
    ({"batch_size": True}, "batch_size must be a positive integer"),
    ({"warmup": -1}, "warmup must be an integer >= 0"),
    ({"min_runs": 0}, "min_runs must be a positive integer"),
    ({"min_seconds": -0.1}, "min_seconds must be a finite number of seconds >= 0"),
    ({"min_seconds": math.nan}, "min_seconds must be a finite number"),
    ({"max_seconds": 0}, "max_seconds must be a finite number of seconds > 0"),
    ({"max_seconds": math.inf}, "max_seconds must be a finite number"),
    ({"min_seconds": 2.0, "max_seconds": 1.0}, "max_seconds .* is below min_seconds"),
])
def test_arguments_are_validated_before_any_call(kwargs: dict, message: str) -> None:
    fn = Counter()
    arguments = {"batch_size": 1, "warmup": 0, "min_runs": 1, "min_seconds": 0.0, **kwargs}
    with pytest.raises(ValueError, match=message):
        measure(fn, **arguments)
    assert fn.calls == 0


def test_fn_must_be_callable() -> None:
    with pytest.raises(ValueError, match="zero-argument callable"):
        measure(42, batch_size=1)  # type: ignore[arg-type]


def test_no_samples_is_an_error() -> None:
    with pytest.raises(ValueError, match="no samples"):
        LatencyStats.from_samples([], batch_size=1)


@pytest.mark.parametrize("n", [6, 25, 100, 1001])
def test_median_interval_is_the_binomial_order_statistics(n: int) -> None:
    """The closed form: with n independent calls, the number below the true median is
    Binomial(n, 1/2); the interval runs between the order statistics whose tails each hold at
    most 2.5 %, and no rank closer would."""
    from scipy.stats import binom

    values = np.sort(np.random.default_rng(n).lognormal(0.0, 0.4, n))
    low, high = median_confidence_interval(values)
    ranks = np.flatnonzero(values == low)[0], np.flatnonzero(values == high)[0]
    lower_tail, upper_tail = binom.cdf(ranks[0], n, 0.5), 1 - binom.cdf(ranks[1], n, 0.5)
    assert lower_tail <= 0.025 and upper_tail <= 0.025 and low <= np.median(values) <= high
    if n > 6:  # one rank closer on either side would leave more than 2.5 % in that tail
        assert binom.cdf(ranks[0] + 1, n, 0.5) > 0.025
        assert 1 - binom.cdf(ranks[1] - 1, n, 0.5) > 0.025


def test_latency_stats_carry_the_median_interval_unless_too_few_calls() -> None:
    stats = LatencyStats.from_samples(np.arange(1, 101) * 1_000_000, batch_size=1)
    assert stats.p50_ci_low_ms <= stats.p50_ms <= stats.p50_ci_high_ms
    assert (stats.p50_ci_low_ms, stats.p50_ci_high_ms) == (40.0, 61.0)
    few = LatencyStats.from_samples([1_000_000] * 3 + [2_000_000] * 2, batch_size=1)
    assert few.p50_ci_low_ms is None and few.p50_ci_high_ms is None
