"""The timing protocol: calibrated windows of fixed work, two configurations interleaved.

For each comparison (`a` against `b`):
1. Warm-up: each side runs untimed work first (its first training steps hold tracing and
   compilation: recorded apart as `warmup_seconds`).
2. Calibration: each side's window is a fixed number of units (optimizer steps or predict
   calls), chosen so that one window lasts at least `training_seconds` (training) or
   `latency_seconds` (latency) on this machine.
3. `windows` pairs of windows, interleaved: a b, b a, a b, ... Adjacent windows form a pair,
   so a drift of the machine's speed hits both sides of a pair alike, and the order inside a
   pair alternates, so neither side always runs first.
4. Per side: the median time per unit with its bootstrap interval; the ratio a/b: the median
   of the pairs' ratios with its interval (harness.measure.intervals).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from harness.measure.intervals import median_interval, ratio_interval
from harness.measure.machine_load import is_noisy
from harness.measure.speed_records import Comparison, Kind, Unit, Window

# request(units) -> (seconds, machine_load): one window of `units` units of work
WindowFn = Callable[[int], tuple[float, Any]]


@dataclass(frozen=True)
class Protocol:
    windows: int = 7  # timed window pairs per comparison
    training_seconds: float = 2.0  # a training window lasts at least this long
    latency_seconds: float = 0.2  # a latency window lasts at least this long
    warmup_steps: int = 3  # untimed optimizer steps before calibration (compilation)
    warmup_calls: int = 10  # untimed predict calls before calibration
    margin: float = 1.15  # windows are sized for margin x the minimum, so they clear it

    def __post_init__(self) -> None:
        if self.windows < 2:
            raise ValueError(f"windows must be at least 2, got {self.windows}")
        for name in ("training_seconds", "latency_seconds"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number of seconds, got {value}")

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "interleaving": "pairs of adjacent windows, a b / b a "
                                                "alternating", "statistic": "median",
                "interval": "95% percentile bootstrap (scipy.stats.bootstrap, 2000 resamples)"}


@dataclass(frozen=True)
class Side:
    """One configuration of a comparison: its label and how to run a window of it."""

    label: str
    window: WindowFn


def calibrate(window: WindowFn, warmup_units: int, min_seconds: float, margin: float
              ) -> tuple[int, float]:
    """(units per window, warm-up seconds): run `warmup_units` untimed, then grow a probe
    until it lasts a quarter of `min_seconds`, and size the window from its rate."""
    warmup_seconds, _ = window(warmup_units)
    probe = max(1, warmup_units)
    while True:
        seconds, _ = window(probe)
        if seconds >= min_seconds / 4:
            break
        probe *= 16 if seconds <= 0 else max(2, min(16, math.ceil(min_seconds / 4 / seconds)))
    return max(1, math.ceil(min_seconds * margin * probe / seconds)), warmup_seconds


def interleave(a: Side, b: Side, units: dict[str, int], pairs: int) -> list[Window]:
    """`pairs` pairs of windows, a b then b a alternately; every window in the order run."""
    windows = []
    for index in range(pairs):
        order = (a, b) if index % 2 == 0 else (b, a)
        for side in order:
            seconds, load = side.window(units[side.label])
            windows.append(Window(label=side.label, seconds=seconds, units=units[side.label],
                                  machine_load=load))
    return windows


def per_unit_pairs(windows: list[Window], a: str, b: str) -> tuple[list[float], list[float]]:
    """Per-unit times of a and of b, pair by pair (windows 2i and 2i+1 form pair i)."""
    a_times, b_times = [], []
    for first, second in zip(windows[0::2], windows[1::2], strict=True):
        by_label = {first.label: first, second.label: second}
        if set(by_label) != {a, b}:
            raise ValueError(f"pair {first.label}/{second.label} is not {a}/{b}")
        a_times.append(by_label[a].seconds / by_label[a].units)
        b_times.append(by_label[b].seconds / by_label[b].units)
    return a_times, b_times


def comparison(kind: Kind, unit: Unit, batch_size: int, a: Side, b: Side,
               units: dict[str, int], warmup: dict[str, float], protocol: Protocol,
               aa: bool = False) -> Comparison:
    """Time a against b with the protocol (units already calibrated)."""
    if a.label == b.label:
        raise ValueError(f"the two sides need distinct labels, both are {a.label!r}")
    windows = interleave(a, b, units, protocol.windows)
    a_times, b_times = per_unit_pairs(windows, a.label, b.label)
    return Comparison(kind=kind, a=a.label, b=b.label, unit=unit, batch_size=batch_size,
                      units_per_window=units, warmup_seconds=warmup, windows=windows,
                      a_seconds_per_unit=median_interval(a_times),
                      b_seconds_per_unit=median_interval(b_times),
                      ratio=ratio_interval(a_times, b_times),
                      busy=any(is_noisy(w.machine_load) for w in windows), aa=aa)
