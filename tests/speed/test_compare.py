"""The protocol with fake configurations: interleaving is real (the order of windows in the
record), calibration sizes windows to the minimum, and the ratio pairs the right windows."""

from __future__ import annotations

import pytest

from harness.measure.protocol import Protocol, Side, calibrate, comparison, per_unit_pairs
from harness.measure.speed_records import Window


class FakeClock:
    """Windows that take `per_unit` seconds a unit, times a machine speed that drifts with
    every window run (whichever side runs it), and a log of who ran."""

    def __init__(self, drift: float = 0.0) -> None:
        self.log: list[str] = []
        self.drift = drift

    def side(self, label: str, per_unit: float) -> Side:
        def window(units: int) -> tuple[float, dict]:
            self.log.append(label)
            speed = 1.0 + self.drift * len(self.log)
            return per_unit * units * speed, {"noisy": False, "others_cores": 0.0}

        return Side(label, window)


def test_windows_are_interleaved_in_alternating_pairs() -> None:
    clock = FakeClock()
    a, b = clock.side("keras", 0.002), clock.side("torch", 0.001)
    result = comparison("training", "step", 128, a, b, {"keras": 10, "torch": 20},
                        {"keras": 0.5, "torch": 0.1}, Protocol(windows=4))
    assert [w.label for w in result.windows] == ["keras", "torch", "torch", "keras",
                                                 "keras", "torch", "torch", "keras"]
    assert clock.log == [w.label for w in result.windows]  # the record keeps the run order
    assert result.ratio.estimate == pytest.approx(2.0)
    assert result.a_seconds_per_unit.estimate == pytest.approx(0.002)
    assert result.units_per_window == {"keras": 10, "torch": 20} and not result.busy


def test_interleaving_cancels_drift_that_sequential_timing_would_not() -> None:
    """The same configuration on both sides, on a machine slowing 5 % a window: paired
    ratios stay near 1; comparing all of a's windows with all of b's after them would not."""
    clock = FakeClock(drift=0.05)
    result = comparison("training", "step", 1, clock.side("torch#1", 0.01),
                        clock.side("torch#2", 0.01), {"torch#1": 5, "torch#2": 5}, {},
                        Protocol(windows=6), aa=True)
    assert result.ratio.estimate == pytest.approx(1.0, abs=0.06)
    sequential = FakeClock(drift=0.05)
    first = [sequential.side("x", 0.01).window(5)[0] for _ in range(6)]
    second = [sequential.side("x", 0.01).window(5)[0] for _ in range(6)]
    assert sum(second) / sum(first) > 1.2


def test_pairs_are_taken_from_adjacent_windows_only() -> None:
    """The negative control: windows not paired a/b (two a's side by side) are refused."""
    windows = [Window(label=label, seconds=1.0, units=1) for label in ("a", "a", "b", "b")]
    with pytest.raises(ValueError, match="not a/b"):
        per_unit_pairs(windows, "a", "b")
    with pytest.raises(ValueError, match="distinct labels"):
        clock = FakeClock()
        comparison("native", "call", 1, clock.side("x", 1), clock.side("x", 1), {"x": 1}, {},
                   Protocol())


def test_calibration_sizes_a_window_to_the_minimum_with_margin() -> None:
    clock = FakeClock()
    units, warmup = calibrate(clock.side("x", 0.001).window, 3, 2.0, 1.15)
    assert warmup == pytest.approx(0.003)
    assert units * 0.001 >= 2.0 and units * 0.001 <= 2.0 * 1.15 + 0.01


def test_protocol_settings_are_checked() -> None:
    with pytest.raises(ValueError):
        Protocol(windows=1)
    with pytest.raises(ValueError):
        Protocol(training_seconds=0)
