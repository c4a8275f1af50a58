"""A steady time per training step, with its interval, from the windows of ordinary epochs.

An epoch's steps are timed in consecutive windows (`plan_windows`, `time_windows`): up to
`MAX_WINDOWS` of about equal step count, the device synchronised at each boundary, and each
first call of a batch shape (FirstSteps in harness.backends.base: tracing, compilation) in a
window of its own, flagged, so no window mixes compilation into steady time. A backend's
`train_epoch` returns them (EpochResult.window_seconds / window_steps / window_first_call).

From those windows, over one epoch or more (`steady_step_time`): the median of the windows'
per-step times, first-call windows and the first steady window of the first epoch, or of an
epoch that compiles again (warm-up: caches, allocators, the step after compilation) left out,
with a 95 % bootstrap interval (harness.measure.intervals: the timing protocol's statistics).
`step_time_ratio`: framework A's figure over B's with its interval. Two jobs run one after
the other, not interleaved, so a drift of the machine's speed between them lands in the ratio:
it is an estimate, never a verdict (only the interleaved protocol, harness.measure.protocol,
with its A/A noise floor gives one).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from harness.measure.intervals import bootstrap_interval, median_interval

MAX_WINDOWS = 10  # steady windows per epoch
# Fewer usable windows give no interval: a percentile bootstrap of the median of so few values
# only restates their range, with far less than its nominal coverage.
MIN_WINDOWS = 5
SEPARATE_JOBS = "from separate jobs, not interleaved: an estimate, no verdict"


# --------------------------------------------------------------------------- the windows


@dataclass(frozen=True)
class StepWindow:
    """Steps [start, stop) of an epoch, timed together; `first_call`: one step whose call is
    the first of its batch shape (compilation), timed alone."""

    start: int
    stop: int
    first_call: bool = False

    @property
    def steps(self) -> int:
        return self.stop - self.start


def plan_windows(shapes: Sequence[Hashable], seen: Collection[Hashable],
                 most: int = MAX_WINDOWS) -> list[StepWindow]:
    """The windows of an epoch whose steps have batch `shapes`, `seen` holding the shapes
    already called before it (FirstSteps.shapes): each first call of a shape alone, the other
    steps in up to `most` windows of about equal step count (one per step below `most`). A
    chunk cut by a first call becomes two windows, each one contiguous run of steps."""
    known, firsts = set(seen), []
    for index, shape in enumerate(shapes):
        if shape not in known:
            known.add(shape)
            firsts.append(index)
    windows = [StepWindow(index, index + 1, True) for index in firsts]
    steady = np.setdiff1d(np.arange(len(shapes)), firsts)
    for chunk in np.array_split(steady, min(most, steady.size)) if steady.size else []:
        for run in np.split(chunk, np.flatnonzero(np.diff(chunk) > 1) + 1):
            windows.append(StepWindow(int(run[0]), int(run[-1]) + 1))
    return sorted(windows, key=lambda window: window.start)


def time_windows(windows: Sequence[StepWindow], run: Callable[[int, int], None]
                 ) -> tuple[float, tuple[float, ...]]:
    """(total seconds, each window's seconds): `run(start, stop)` takes those steps and
    returns once the device finished them. One clock from the first window's start to the
    last one's end, read at every boundary: the windows add up to the total."""
    start = previous = time.perf_counter()
    seconds = []
    for window in windows:
        run(window.start, window.stop)
        now = time.perf_counter()
        seconds.append(now - previous)
        previous = now
    return previous - start, tuple(seconds)


# --------------------------------------------------------------------------- the statistics


class EpochWindows(Protocol):
    """What the statistics read of an epoch (EpochResult has it; so can a stored record)."""

    @property
    def window_seconds(self) -> Sequence[float]: ...

    @property
    def window_steps(self) -> Sequence[int]: ...

    @property
    def window_first_call(self) -> Sequence[bool]: ...


@dataclass(frozen=True)
class Windows:
    """An epoch's windows as plain values, e.g. read back from a training record."""

    window_seconds: tuple[float, ...]
    window_steps: tuple[int, ...]
    window_first_call: tuple[bool, ...]


def recorded_windows(history: Iterable[Mapping[str, Any]]) -> list[Windows]:
    """The windows of a training record's epochs (metrics.json `history`), those that have
    them (records written before windows have none)."""
    return [Windows(tuple(epoch["window_seconds"]), tuple(epoch["window_steps"]),
                    tuple(epoch.get("window_first_call") or [False] * len(epoch["window_steps"])))
            for epoch in history if epoch.get("window_seconds") and epoch.get("window_steps")]


def _span(low: float | None, high: float | None, count: int, scale: Callable[[float], str]
          ) -> str:
    if low is None or high is None:
        return f"no interval: {_windows(count)}, {MIN_WINDOWS} needed"
    return f"95 % CI {scale(low)}–{scale(high)}, {_windows(count)}"


def _windows(count: int) -> str:
    return f"{count} window{'' if count == 1 else 's'}"


def _unit(seconds: float) -> tuple[float, str]:
    """A readable unit for a step time: s, ms or µs."""
    for factor, unit in ((1.0, "s"), (1e3, "ms"), (1e6, "µs")):
        if seconds * factor >= 1:
            return factor, unit
    return 1e6, "µs"


def _formatter(value: float, factor: float = 1.0) -> Callable[[float], str]:
    """Numbers shown with the decimals that give `value` three significant digits, the same
    for its interval's ends (so 12.0 does not shrink to 12 next to 12.8)."""
    scaled = abs(value * factor)
    decimals = max(0, 2 - math.floor(math.log10(scaled))) if scaled > 0 else 3
    return lambda number: f"{number * factor:.{decimals}f}"


@dataclass(frozen=True)
class StepTime:
    """The steady time of one training step: the median over `values` (per-step seconds of
    each window used), its 95 % bootstrap interval (None with fewer than MIN_WINDOWS),
    `excluded` windows left out (first calls, warm-up)."""

    median: float
    low: float | None
    high: float | None
    values: tuple[float, ...]
    excluded: int

    @property
    def windows(self) -> int:
        return len(self.values)

    def describe(self) -> str:
        factor, unit = _unit(self.median)
        scale = _formatter(self.median, factor)
        return (f"{scale(self.median)} {unit}/step "
                f"({_span(self.low, self.high, self.windows, scale)})")

    def short(self) -> str:
        """For a table cell: "945 µs [900–990]", or "945 µs (4 windows)" without an interval."""
        factor, unit = _unit(self.median)
        scale = _formatter(self.median, factor)
        if self.low is None or self.high is None:
            return f"{scale(self.median)} {unit} ({_windows(self.windows)})"
        return f"{scale(self.median)} {unit} [{scale(self.low)}–{scale(self.high)}]"


def steady_values(epochs: Sequence[EpochWindows], warmup: int = 1) -> tuple[list[float], int]:
    """(per-step seconds of each window used, windows left out) over `epochs` in the order they
    ran: every first-call window out, and the first `warmup` other windows of the first epoch
    (pass 0 where the epochs continue a warmed-up run) and of any later epoch that opens with
    a first call (a process resumed from a checkpoint compiles, and warms up, again)."""
    values, excluded = [], 0
    for number, epoch in enumerate(epochs):
        fresh = number == 0 or (len(epoch.window_first_call) > 0 and epoch.window_first_call[0])
        skip = warmup if fresh else 0
        for seconds, steps, first in zip(epoch.window_seconds, epoch.window_steps,
                                         epoch.window_first_call, strict=True):
            if first or steps <= 0:
                excluded += 1
            elif skip > 0:
                skip -= 1
                excluded += 1
            else:
                values.append(seconds / steps)
    return values, excluded


def steady_step_time(epochs: Sequence[EpochWindows], warmup: int = 1) -> StepTime | None:
    """The steady time per step over `epochs` (see `steady_values`); None without a single
    usable window (an epoch of first calls only, or a backend that times no windows)."""
    values, excluded = steady_values(epochs, warmup)
    if not values:
        return None
    if len(values) < MIN_WINDOWS:
        return StepTime(float(np.median(values)), None, None, tuple(values), excluded)
    estimate = median_interval(values)
    return StepTime(estimate.estimate, estimate.ci_low, estimate.ci_high, tuple(values),
                    excluded)


@dataclass(frozen=True)
class StepTimeRatio:
    """a's steady step time over b's (above 1: b is faster), from two separate jobs, with a
    95 % bootstrap interval resampling each side's windows apart (None where a side has fewer
    than MIN_WINDOWS). An estimate, never a verdict: see SEPARATE_JOBS."""

    ratio: float
    low: float | None
    high: float | None
    a: StepTime
    b: StepTime
    note: str = SEPARATE_JOBS

    def describe(self) -> str:
        scale = _formatter(self.ratio)
        if self.low is None or self.high is None:
            span = (f"no interval: {self.a.windows} and {self.b.windows} windows, "
                    f"{MIN_WINDOWS} each needed")
        else:
            span = (f"95 % CI {scale(self.low)}–{scale(self.high)}, {self.a.windows} and "
                    f"{self.b.windows} windows")
        return f"{scale(self.ratio)}x ({span}; {self.note})"


def step_time_ratio(a: StepTime, b: StepTime) -> StepTimeRatio:
    """a's time per step over b's: the ratio of the medians, its interval from a two-sample
    bootstrap on the log scale (intervals' settings), where "slower" and "faster" are alike."""
    ratio = a.median / b.median
    if a.low is None or b.low is None:
        return StepTimeRatio(ratio, None, None, a, b)
    logs = (np.log(np.asarray(a.values)), np.log(np.asarray(b.values)))
    if all(np.ptp(side) == 0 for side in logs):
        return StepTimeRatio(ratio, ratio, ratio, a, b)

    def log_ratio(x: np.ndarray, y: np.ndarray, axis: int) -> np.ndarray:
        return np.median(x, axis=axis) - np.median(y, axis=axis)

    low, high = bootstrap_interval(logs, log_ratio, vectorized=True)
    return StepTimeRatio(ratio, min(math.exp(low), ratio), max(math.exp(high), ratio), a, b)

