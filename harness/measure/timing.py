"""Latency measurement shared by every runtime: call a zero-argument function, time each call.

Framework-free on purpose: ONNX Runtime, PyTorch and Keras predictors are all timed by this one
loop, so differences between them come from the runtimes, not from how each was timed. The
callable itself must block until its result is ready (device syncs belong inside it).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from harness.measure.machine_load import load_mark, load_since

_NS_PER_MS = 1e6
_NS_PER_S = 1e9


@dataclass(frozen=True)
class LatencyStats:
    """Per-call latency in milliseconds over `runs` timed calls of one batch each."""

    runs: int
    total_seconds: float  # sum of the timed calls (loop bookkeeping excluded)
    mean_ms: float
    std_ms: float  # sample standard deviation (0 for a single run)
    min_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    batch_size: int
    throughput: float  # samples per second: batch_size / mean latency
    # others' CPU use during the timed loop (harness.measure.machine_load.judge); None: not recorded
    machine_load: dict[str, Any] | None = None
    # the median's 95 % confidence interval over the calls (order statistics: distribution
    # free); None with too few calls for one
    p50_ci_low_ms: float | None = None
    p50_ci_high_ms: float | None = None

    @classmethod
    def from_samples(cls, samples_ns: Sequence[int] | np.ndarray, batch_size: int) -> LatencyStats:
        """Statistics of per-call durations given in nanoseconds."""
        if len(samples_ns) == 0:
            raise ValueError("no samples: at least one timed call is needed")
        _check_positive_int("batch_size", batch_size)
        ns = np.asarray(samples_ns, dtype=np.float64)
        ms = ns / _NS_PER_MS
        p50, p90, p99 = np.percentile(ms, [50, 90, 99])
        low, high = median_confidence_interval(ms)
        mean_s = float(ns.mean()) / _NS_PER_S
        return cls(
            runs=int(ns.size),
            total_seconds=float(ns.sum()) / _NS_PER_S,
            mean_ms=float(ms.mean()),
            std_ms=float(ms.std(ddof=1)) if ns.size > 1 else 0.0,
            min_ms=float(ms.min()),
            p50_ms=float(p50),
            p90_ms=float(p90),
            p99_ms=float(p99),
            max_ms=float(ms.max()),
            batch_size=batch_size,
            # a call faster than the clock's resolution would divide by zero
            throughput=batch_size / mean_s if mean_s > 0 else math.inf,
            p50_ci_low_ms=low, p50_ci_high_ms=high,
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def median_confidence_interval(values: np.ndarray, confidence: float = 0.95
                               ) -> tuple[float | None, float | None]:
    """The median's confidence interval from order statistics (scipy.stats.quantile_test):
    exact for any distribution of independent calls; (None, None) below 6 values, too few for
    a 95 % interval."""
    from scipy.stats import quantile_test

    if values.size < 6 or np.ptp(values) == 0:
        return (None, None) if values.size < 6 else (float(values[0]), float(values[0]))
    interval = quantile_test(values, q=float(np.median(values)), p=0.5).confidence_interval(
        confidence)
    low, high = float(interval.low), float(interval.high)
    return (None, None) if math.isnan(low) or math.isnan(high) else (low, high)


def _check_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _check_seconds(name: str, value: Any, allow_zero: bool) -> None:
    ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
          and math.isfinite(value) and (value >= 0 if allow_zero else value > 0))
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number of seconds {bound}, got {value!r}")


def validate_measure_args(*, batch_size: Any, warmup: Any, min_runs: Any, min_seconds: Any,
                          max_seconds: Any) -> None:
    """Raise ValueError for settings `measure` cannot honour, before anything runs."""
    _check_positive_int("batch_size", batch_size)
    if isinstance(warmup, bool) or not isinstance(warmup, (int, np.integer)) or warmup < 0:
        raise ValueError(f"warmup must be an integer >= 0, got {warmup!r}")
    _check_positive_int("min_runs", min_runs)
    _check_seconds("min_seconds", min_seconds, allow_zero=True)
    if max_seconds is not None:
        _check_seconds("max_seconds", max_seconds, allow_zero=False)
        if max_seconds < min_seconds:
            raise ValueError(f"max_seconds ({max_seconds}) is below min_seconds ({min_seconds}): "
                             "the minimum could never be reached")


def measure(fn: Callable[[], Any], *, batch_size: int, warmup: int = 10, min_runs: int = 50,
            min_seconds: float = 1.0, max_seconds: float | None = None) -> LatencyStats:
    """Time `fn()` call by call until both `min_runs` calls and `min_seconds` of timed calls
    are reached, after `warmup` untimed calls (first-call compilation, allocator growth).

    `max_seconds`, if given, stops the loop once that much wall time went into timed calls and
    loop bookkeeping, even short of `min_runs` (at least one call is always timed); compare
    `runs` with `min_runs` to detect it.
    """
    if not callable(fn):
        raise ValueError(f"fn must be a zero-argument callable, got {type(fn).__name__}")
    validate_measure_args(batch_size=batch_size, warmup=warmup, min_runs=min_runs,
                          min_seconds=min_seconds, max_seconds=max_seconds)
    for _ in range(warmup):
        fn()
    clock = time.perf_counter_ns
    min_ns = int(min_seconds * _NS_PER_S)
    max_ns = math.inf if max_seconds is None else max_seconds * _NS_PER_S
    samples: list[int] = []
    timed_ns = 0
    mark = load_mark()
    loop_start = clock()
    while True:
        start = clock()
        fn()
        elapsed = clock() - start
        samples.append(elapsed)
        timed_ns += elapsed
        if len(samples) >= min_runs and timed_ns >= min_ns:
            break
        if clock() - loop_start >= max_ns:
            break
    load = load_since(mark)
    return replace(LatencyStats.from_samples(samples, batch_size), machine_load=load)
