"""harness.measure.step_windows: how an epoch's steps split into windows, and the steady step
time (with its interval) and the ratio of two of them, from those windows."""

from __future__ import annotations

import re

import numpy as np
import pytest

from harness.measure.intervals import median_interval
from harness.measure.step_windows import (
    MAX_WINDOWS,
    MIN_WINDOWS,
    SEPARATE_JOBS,
    StepWindow,
    Windows,
    plan_windows,
    steady_step_time,
    step_time_ratio,
    time_windows,
)

FULL, PARTIAL = (32, 784), (16, 784)


def _epoch(per_step: list[float], steps: int = 4, first: tuple[int, ...] = ()) -> Windows:
    """Windows of `steps` steps each taking `per_step[i]` seconds per step; the windows at
    `first` are single-step first calls."""
    counts = tuple(1 if i in first else steps for i in range(len(per_step)))
    return Windows(tuple(t * n for t, n in zip(per_step, counts, strict=True)), counts,
                   tuple(i in first for i in range(len(per_step))))


def _covers(windows: list[StepWindow], steps: int) -> bool:
    """The windows are consecutive, non-empty runs covering steps 0..steps-1 once."""
    bounds = [(w.start, w.stop) for w in windows]
    return (all(start < stop for start, stop in bounds) and bounds[0][0] == 0
            and bounds[-1][1] == steps
            and all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False)))


# --------------------------------------------------------------------------- windows


def test_steady_epoch_splits_into_ten_windows_of_about_equal_steps() -> None:
    windows = plan_windows([FULL] * 25, {FULL})
    assert len(windows) == MAX_WINDOWS and _covers(windows, 25)
    assert {w.steps for w in windows} == {2, 3} and not any(w.first_call for w in windows)


def test_fewer_steps_than_windows_give_one_window_per_step() -> None:
    windows = plan_windows([FULL] * 4, {FULL})
    assert [w.steps for w in windows] == [1, 1, 1, 1] and _covers(windows, 4)


def test_first_calls_are_timed_alone_and_flagged() -> None:
    """The first epoch: the first full batch and the partial last batch are new shapes."""
    windows = plan_windows([FULL] * 21 + [PARTIAL], set())
    assert _covers(windows, 22) and len(windows) == MAX_WINDOWS + 2
    assert [w.first_call for w in windows] == [True] + [False] * MAX_WINDOWS + [True]
    assert windows[0].steps == windows[-1].steps == 1
    # a shape already called before the epoch is no first call
    assert not any(w.first_call for w in plan_windows([FULL] * 21 + [PARTIAL], {FULL, PARTIAL}))


def test_a_first_call_inside_a_chunk_cuts_it_into_two_windows() -> None:
    windows = plan_windows([FULL] * 4 + [PARTIAL] + [FULL] * 4, {FULL}, most=3)
    assert _covers(windows, 9)
    assert [(w.start, w.stop, w.first_call) for w in windows] == [
        (0, 3, False), (3, 4, False), (4, 5, True), (5, 7, False), (7, 9, False)]


def test_time_windows_runs_consecutive_ranges_on_one_clock() -> None:
    calls: list[tuple[int, int]] = []
    windows = plan_windows([FULL] * 12, {FULL})
    total, seconds = time_windows(windows, lambda start, stop: calls.append((start, stop)))
    assert calls == [(w.start, w.stop) for w in windows]
    assert len(seconds) == len(windows) and all(s >= 0 for s in seconds)
    assert sum(seconds) == pytest.approx(total, rel=1e-9, abs=1e-12)
    assert time_windows([], lambda start, stop: None) == (0.0, ())


# --------------------------------------------------------------------------- steady step time


def test_known_windows_give_their_median_and_an_interval_around_it() -> None:
    per_step = [1.00, 1.10, 0.90, 1.05, 0.95, 1.00, 1.02, 0.98, 1.01, 0.97]
    result = steady_step_time([_epoch(per_step)], warmup=0)
    assert result is not None and result.windows == 10 and result.excluded == 0
    assert result.median == pytest.approx(np.median(per_step))
    assert result.low is not None and result.high is not None
    assert result.low <= result.median <= result.high
    assert result.low >= 0.9 and result.high <= 1.1
    # the timing protocol's statistic, not a new one
    reference = median_interval(per_step)
    assert (result.low, result.high) == (reference.ci_low, reference.ci_high)


def test_first_calls_and_warm_up_are_left_out() -> None:
    """Negative control: the same windows with compilation and warm-up counted give another
    median; left out, the median is the steady windows' alone."""
    steady = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    epoch = _epoch([1000.0, 100.0, *steady], first=(0,))  # compile, then warm-up window
    result = steady_step_time([epoch])
    assert result is not None and result.median == pytest.approx(3.5)
    assert result.windows == 6 and result.excluded == 2
    counted = Windows(epoch.window_seconds, epoch.window_steps, (False,) * 8)
    everything = steady_step_time([counted], warmup=0)
    assert everything is not None and everything.median == pytest.approx(4.5)


def test_warm_up_is_the_first_steady_window_of_the_first_epoch_only() -> None:
    first = _epoch([50.0, 9.0, 1.0, 1.0, 1.0], first=(0,))  # 50: compile, 9: warm-up
    second = _epoch([7.0, 1.0, 1.0, 1.0, 1.0])  # its first window counts
    result = steady_step_time([first, second])
    assert result is not None and result.windows == 3 + 5 and result.excluded == 2
    assert 7.0 in result.values and 9.0 not in result.values and 50.0 not in result.values


def test_an_epoch_that_compiles_again_warms_up_again() -> None:
    """A run resumed from a checkpoint in a new process: its first epoch there opens with a
    first call, and its first steady window is warm-up too."""
    first = _epoch([50.0, 9.0, 1.0, 1.0, 1.0], first=(0,))
    resumed = _epoch([40.0, 8.0, 1.0, 1.0, 1.0], first=(0,))
    result = steady_step_time([first, resumed])
    assert result is not None and result.values == (1.0,) * 6 and result.excluded == 4


def test_too_few_windows_give_no_interval_and_say_so() -> None:
    result = steady_step_time([_epoch([0.010, 0.011, 0.012, 0.013, 0.014])])  # 4 after warm-up
    assert result is not None and result.windows == MIN_WINDOWS - 1
    assert result.low is None and result.high is None
    assert result.median == pytest.approx(0.0125)  # 0.010 was the warm-up
    assert result.describe() == f"12.5 ms/step (no interval: 4 windows, {MIN_WINDOWS} needed)"


def test_nothing_steady_gives_none() -> None:
    assert steady_step_time([]) is None
    assert steady_step_time([Windows((), (), ())]) is None  # a backend that times no windows
    assert steady_step_time([_epoch([3.0, 0.1], first=(0,))]) is None  # compile + warm-up


def test_describe_reads_as_a_step_time_with_its_interval() -> None:
    per_step = [0.0123, 0.0119, 0.0128, 0.0121, 0.0125, 0.0122, 0.0124, 0.0126, 0.0120, 0.0130]
    text = steady_step_time([_epoch(per_step)]).describe()
    assert re.fullmatch(r"12\.\d ms/step \(95 % CI 1[12]\.\d–1[23]\.\d, 9 windows\)", text)
    assert "µs/step" in steady_step_time([_epoch([2e-5] * 6)]).describe()


# --------------------------------------------------------------------------- ratio


def _spread(centre: float, n: int = 10, seed: int = 0) -> list[float]:
    return list(centre * np.exp(np.random.default_rng(seed).normal(0, 0.03, n)))


def test_ratio_of_two_jobs_is_an_estimate_with_an_interval_and_no_verdict() -> None:
    a = steady_step_time([_epoch(_spread(0.015, seed=1))], warmup=0)
    b = steady_step_time([_epoch(_spread(0.010, seed=2))], warmup=0)
    ratio = step_time_ratio(a, b)
    assert ratio.ratio == pytest.approx(a.median / b.median)
    assert ratio.low is not None and ratio.low <= ratio.ratio <= ratio.high
    assert ratio.low > 1.3 and ratio.high < 1.7
    assert step_time_ratio(b, a).ratio == pytest.approx(1 / ratio.ratio)
    text = ratio.describe()
    assert SEPARATE_JOBS in text and text.startswith(f"{ratio.ratio:.2f}x (95 % CI")
    assert not re.search(r"\b(faster|slower)\b", text)  # no verdict without interleaving


def test_ratio_without_enough_windows_has_no_interval() -> None:
    a = steady_step_time([_epoch([0.02, 0.021, 0.019])], warmup=0)
    b = steady_step_time([_epoch(_spread(0.010))], warmup=0)
    ratio = step_time_ratio(a, b)
    assert ratio.low is None and ratio.high is None
    assert "no interval: 3 and 10 windows" in ratio.describe()


def test_identical_constant_jobs_give_a_ratio_of_exactly_one() -> None:
    a = steady_step_time([_epoch([0.01] * 8)], warmup=0)
    ratio = step_time_ratio(a, a)
    assert (ratio.ratio, ratio.low, ratio.high) == (1.0, 1.0, 1.0)
