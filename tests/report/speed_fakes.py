"""Synthetic protocol speed records (harness.measure.speed_records) for the report tests:
interleaved
windows drawn from a seeded generator around set per-unit times, written where `harness
retime` writes them (RUN_DIR/speed/specs, RUN_DIR/speed/repeat)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.measure.intervals import median_interval, ratio_interval
from harness.measure.speed_load import REPEAT_DIR, SPECS_DIR, speed_dir
from harness.measure.speed_records import Comparison, Estimate, SpecSpeed, Window

UNITS = 10  # steps or calls per window
WINDOWS = 8  # per configuration
STEPS_PER_EPOCH = 100
BACKENDS = {"keras": "Keras 3 on TensorFlow, graph mode, XLA off",
            "torch": "PyTorch 2, eager mode"}
ENVIRONMENT = {"machine": {"cpu": "Test CPU 9000", "logical_cores": 4, "usable_cores": 2,
                           "memory_gib": 15.6, "cpu_flags": ["avx2", "fma", "avx512f"],
                           "virtual_machine": True}}
PROTOCOL = {"windows": WINDOWS, "training_seconds": 2.0, "latency_seconds": 0.2,
            "warmup_steps": 3, "warmup_calls": 10, "margin": 1.15,
            "interleaving": "pairs of adjacent windows, a b / b a alternating",
            "statistic": "median", "interval": "95% percentile bootstrap",
            "batch_sizes": [1, 32], "threads": 2, "onnxruntime_graph_optimization": "all",
            "timed_region": {"training": "train steps, data in framework memory",
                             "native": "predictor calls on one batch in framework memory",
                             "onnxruntime": "session.run calls with a feed dict prepared once"}}


def windows(a: str, b: str, a_time: float, b_time: float, spread: float,
            rng: np.random.Generator) -> list[Window]:
    """a b, b a, a b ...: per-unit times around `a_time`, `b_time` (relative noise
    `spread`), both of a pair scaled by the same slow drift, as on a real machine."""
    out = []
    for i in range(WINDOWS):
        drift = 1 + 0.05 * i / WINDOWS
        pair = ((a, a_time), (b, b_time))
        for label, time in pair if i % 2 == 0 else pair[::-1]:
            seconds = time * drift * (1 + rng.normal(0, spread)) * UNITS
            out.append(Window(label=label, seconds=float(seconds), units=UNITS))
    return out


def comparison(kind: str, a: str, b: str, a_time: float, b_time: float, rng: np.random.Generator,
               *, batch: int = 32, spread: float = 0.005, aa: bool = False,
               busy: bool = False) -> Comparison:
    made = windows(a, b, a_time, b_time, spread, rng)
    per_unit = {label: [w.seconds / w.units for w in made if w.label == label] for label in (a, b)}
    return Comparison(
        kind=kind, a=a, b=b, unit="step" if kind == "training" else "call", batch_size=batch,
        units_per_window={a: UNITS, b: UNITS}, warmup_seconds={a: 0.5, b: 0.4}, windows=made,
        a_seconds_per_unit=median_interval(per_unit[a]),
        b_seconds_per_unit=median_interval(per_unit[b]),
        ratio=ratio_interval(per_unit[a], per_unit[b]), busy=busy, aa=aa)


def _epoch(step: Estimate) -> Estimate:
    return Estimate(estimate=step.estimate * STEPS_PER_EPOCH, ci_low=step.ci_low * STEPS_PER_EPOCH,
                    ci_high=step.ci_high * STEPS_PER_EPOCH, n=step.n)


def spec_speed(spec: str, *, training: float, native: float, ort: float, seed: int,
               aliases: tuple[str, ...] = (), step_s: float = 0.01,
               started_utc: str = "2024-01-01T00:00:00Z",
               finished_utc: str = "2024-01-01T00:10:00Z") -> SpecSpeed:
    """One spec's record: Keras ÷ PyTorch training step time `training`, native latency
    `native`, ONNX Runtime `ort` times faster than either framework; A/A comparisons with
    twice the noise, for the floor."""
    rng = np.random.default_rng(seed)
    train = comparison("training", "keras", "torch", training * step_s, step_s, rng, batch=128)
    comparisons = [train,
                   comparison("training", "torch#1", "torch#2", step_s, step_s, rng, batch=128,
                              spread=0.01, aa=True)]
    for size in (1, 32):
        call = 0.001 * size ** 0.5
        comparisons += [
            comparison("native", "keras", "torch", native * call, call, rng, batch=size),
            comparison("native", "torch#1", "torch#2", call, call, rng, batch=size,
                       spread=0.01, aa=True),
            *(comparison("onnxruntime", label, "onnxruntime", call * factor,
                         call * factor / ort, rng, batch=size)
              for label, factor in (("keras", native), ("torch", 1.0)))]
    return SpecSpeed(
        spec=spec, spec_hash=f"hash-{spec}", training_hash=f"train-{spec}",
        aliases=list(aliases), backends=BACKENDS, threads=2,
        steps_per_epoch=STEPS_PER_EPOCH, batch_size=128,
        epoch_estimate={"keras": _epoch(train.a_seconds_per_unit),
                        "torch": _epoch(train.b_seconds_per_unit)},
        comparisons=comparisons, protocol=PROTOCOL, environment=ENVIRONMENT,
        started_utc=started_utc, finished_utc=finished_utc)


def write_speed(run_dir: Path, record: SpecSpeed, repeat: bool = False) -> Path:
    folder = speed_dir(run_dir) / (REPEAT_DIR if repeat else SPECS_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{record.spec}.json"
    path.write_text(record.model_dump_json(indent=1), encoding="utf-8")
    return path
