"""The typed records of a speed comparison (harness.speed): written once as `speed.json` per
spec, read once by the report.

A comparison times two configurations `a` and `b` (Keras vs PyTorch, a framework vs ONNX
Runtime, a framework vs itself for the noise floor) in windows of a fixed amount of work, their
windows interleaved (a b a b ...), and keeps every raw window in the order it ran.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SPEED_SCHEMA_VERSION = 1

Verdict = Literal["faster", "slower", "within noise"]
# what one unit of a window's work is: one optimizer step (training) or one predict call
Unit = Literal["step", "call"]
Kind = Literal["training", "native", "onnxruntime"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Estimate(_Record):
    """A median with its 95 % bootstrap confidence interval over `n` values."""

    estimate: float
    ci_low: float
    ci_high: float
    n: int
    method: str = "median; 95% percentile bootstrap"


class Window(_Record):
    """One timing window: `units` steps or calls of configuration `label`, in `seconds`."""

    label: str
    seconds: float
    units: int
    # others' CPU use during the window (harness.measure.machine_load); None: not recorded
    machine_load: dict[str, Any] | None = None


class Comparison(_Record):
    """`a` against `b`, timed in interleaved windows. `ratio` is a's time per unit over b's,
    from the paired ratios of adjacent windows (above 1: b is faster)."""

    kind: Kind
    a: str
    b: str
    unit: Unit
    batch_size: int
    units_per_window: dict[str, int]  # per label: the fixed work of its windows
    warmup_seconds: dict[str, float]  # per label: its untimed first window(s), compilation in
    windows: list[Window]  # every window in the order it ran
    a_seconds_per_unit: Estimate
    b_seconds_per_unit: Estimate
    ratio: Estimate
    busy: bool  # any window timed on a busy machine
    aa: bool = False  # a and b are the same configuration: a noise-floor measurement


class SpecSpeed(_Record):
    """Every comparison of one spec, with what decides them."""

    schema_version: int = SPEED_SCHEMA_VERSION
    kind: Literal["speed"] = "speed"
    spec: str
    spec_hash: str
    training_hash: str  # specs that train the same model share it (harness.spec.training_hash)
    aliases: list[str] = Field(default_factory=list)  # other specs with the same training_hash
    backends: dict[str, str]  # label -> how it ran ("Keras 3 on TensorFlow, graph mode, XLA off")
    threads: int
    steps_per_epoch: int
    batch_size: int
    # steady epoch = steps_per_epoch x median step time, per training label
    epoch_estimate: dict[str, Estimate]
    comparisons: list[Comparison]
    protocol: dict[str, Any]  # windows, minimum window seconds, warm-up, bootstrap settings
    environment: dict[str, Any]
    started_utc: str
    finished_utc: str
    commit: str | None = None
    # comparisons that could not run (e.g. an export that failed), one line each
    problems: list[str] = Field(default_factory=list)
