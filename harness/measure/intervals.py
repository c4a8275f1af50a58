"""The statistics of the timing protocol: medians with bootstrap intervals, paired ratios of
interleaved windows, the noise floor of A/A comparisons, and the verdict rule.

Every interval is a 95 % percentile bootstrap (scipy.stats.bootstrap) with a fixed seed, so a
report made twice from the same records says the same. Ratios are handled on the log scale,
where "1.2x slower" and "1.2x faster" are the same distance from 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from harness.measure.speed_records import Comparison, Estimate, Verdict

CONFIDENCE = 0.95
N_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
_METHOD = "percentile"


def bootstrap_interval(data: tuple[np.ndarray, ...], statistic, vectorized: bool
                       ) -> tuple[float, float]:
    from scipy.stats import bootstrap

    result = bootstrap(data, statistic, confidence_level=CONFIDENCE, n_resamples=N_RESAMPLES,
                       method=_METHOD, vectorized=vectorized,
                       rng=np.random.default_rng(BOOTSTRAP_SEED))
    low, high = result.confidence_interval
    return float(low), float(high)


def median_interval(values: Sequence[float] | np.ndarray) -> Estimate:
    """The median of `values` with its 95 % bootstrap interval (a single value: no spread)."""
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0 or not np.all(np.isfinite(data)):
        raise ValueError(f"need finite values for an interval, got {data.tolist()!r}")
    median = float(np.median(data))
    if data.size < 2 or np.ptp(data) == 0:
        return Estimate(estimate=median, ci_low=median, ci_high=median, n=int(data.size))
    low, high = bootstrap_interval((data,), lambda x, axis: np.median(x, axis=axis),
                                   vectorized=True)
    return Estimate(estimate=median, ci_low=min(low, median), ci_high=max(high, median),
                    n=int(data.size))


def paired_ratios(a: Sequence[float], b: Sequence[float]) -> np.ndarray:
    """a[i] / b[i]: the ratio of each pair of adjacent (interleaved) windows' per-unit times."""
    a_arr, b_arr = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a_arr.shape != b_arr.shape or a_arr.ndim != 1:
        raise ValueError(f"paired windows need equal counts, got {a_arr.size} and {b_arr.size}")
    if np.any(a_arr <= 0) or np.any(b_arr <= 0):
        raise ValueError("window times must be positive")
    return a_arr / b_arr


def ratio_interval(a: Sequence[float], b: Sequence[float]) -> Estimate:
    """a's time over b's: the median of the paired ratios, with its interval (bootstrapped on
    the log scale, so the interval is symmetric in "faster" and "slower")."""
    logs = median_interval(np.log(paired_ratios(a, b)))
    return Estimate(estimate=math.exp(logs.estimate), ci_low=math.exp(logs.ci_low),
                    ci_high=math.exp(logs.ci_high), n=logs.n,
                    method="median of paired ratios of adjacent windows; 95% percentile "
                           "bootstrap on the log scale")


def geometric_mean_interval(ratios_per_spec: Sequence[Sequence[float]]) -> Estimate:
    """Over specs: the geometric mean of each spec's median paired ratio, with a 95 % interval
    from resampling every spec's windows (a two-level bootstrap: the spread of each spec's
    estimate carries into the whole). `n` is the number of specs."""
    logs = tuple(np.log(np.asarray(r, dtype=np.float64)) for r in ratios_per_spec if len(r))
    if not logs:
        raise ValueError("no spec has paired ratios")
    point = float(np.mean([np.median(x) for x in logs]))
    if all(x.size < 2 or np.ptp(x) == 0 for x in logs):
        low = high = point
    else:
        def statistic(*samples: np.ndarray, axis: int) -> np.ndarray:
            return np.mean([np.median(s, axis=axis) for s in samples], axis=0)

        low, high = bootstrap_interval(logs, statistic, vectorized=True)
    return Estimate(estimate=math.exp(point), ci_low=math.exp(min(low, point)),
                    ci_high=math.exp(max(high, point)), n=len(logs),
                    method="geometric mean over specs of each spec's median paired ratio; 95% "
                           "bootstrap resampling every spec's windows")


def log_distance(estimate: Estimate) -> float:
    """How far the interval reaches from 1, on the log scale (an A/A comparison's noise)."""
    return max(abs(math.log(estimate.ci_low)), abs(math.log(estimate.ci_high)),
               abs(math.log(estimate.estimate)))


def noise_floor(aa: Sequence[Comparison]) -> float | None:
    """The noise floor on the log scale: the furthest any A/A comparison's ratio interval
    reaches from 1 (the same configuration against itself should give 1 exactly; whatever it
    gives instead is what this machine's noise can fake). None without an A/A comparison."""
    reaches = [log_distance(c.ratio) for c in aa if c.aa]
    return max(reaches) if reaches else None


def verdict(ratio: Estimate, floor: float | None) -> Verdict:
    """For a time ratio a/b: "slower" (a takes longer) or "faster" only when the interval
    excludes 1 and the estimate is further from 1 than the noise floor; else "within noise".
    Without a measured floor no verdict beyond noise is given."""
    if floor is None:
        return "within noise"
    excludes_one = ratio.ci_low > 1 or ratio.ci_high < 1
    if not excludes_one or abs(math.log(ratio.estimate)) <= floor:
        return "within noise"
    return "slower" if ratio.estimate > 1 else "faster"


def floor_as_percent(floor: float | None) -> str:
    return "not measured" if floor is None else f"±{(math.exp(floor) - 1) * 100:.1f} %"
