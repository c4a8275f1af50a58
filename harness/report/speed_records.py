"""The run's protocol speed records (harness.speed, RUN_DIR/speed/) as the report reads them:
per-spec paired ratios of a comparison's interleaved windows, the comparisons a report shows,
their verdicts against the machine's A/A noise floor, specs that train the same model
(aliases, counted once) and how each framework ran ("Keras 3 on TensorFlow, graph mode").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.backends import REGISTRY
from harness.measure.intervals import paired_ratios
from harness.measure.intervals import verdict as time_verdict
from harness.measure.protocol import per_unit_pairs
from harness.measure.speed_load import SpeedData
from harness.measure.speed_records import Comparison, Estimate, Kind, SpecSpeed
from harness.report.tables import DELTA_PAIR

if TYPE_CHECKING:
    from harness.report.load import RunData

ORT = "onnxruntime"
DECISION_BATCHES = (1, 32)
# ONNX Runtime comparisons are latency comparisons: their noise is the native A/A floor
FLOOR_KIND: dict[str, Kind] = {"training": "training", "native": "native", ORT: "native"}
NO_FLOOR = " (no A/A noise floor measured)"
_BACKEND_WORDS = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch"}
_NAMES = {**{name: info.label for name, info in REGISTRY.items()}, ORT: "ONNX Runtime"}


@dataclass(frozen=True)
class Pair:
    """One kind of comparison the report shows: `a` against `b` (at `batch`, latency only)."""

    kind: Kind
    a: str
    b: str
    batch: int | None = None


DEFAULT_PAIRS = (Pair("training", *DELTA_PAIR),
                 *(Pair("native", *DELTA_PAIR, size) for size in DECISION_BATCHES),
                 *(Pair(ORT, backend, ORT, size) for backend in DELTA_PAIR
                   for size in DECISION_BATCHES))


def spec_ratios(comparison: Comparison) -> np.ndarray:
    """a's time over b's for each pair of adjacent windows (window 2i with 2i + 1, whichever
    ran first), as the protocol paired them (harness.measure.protocol.per_unit_pairs)."""
    a_times, b_times = per_unit_pairs(comparison.windows, comparison.a, comparison.b)
    return paired_ratios(a_times, b_times) if a_times else np.empty(0)


def find(record: SpecSpeed, pair: Pair) -> Comparison | None:
    """The record's comparison of `pair` (not an A/A one), if it has one."""
    return next((c for c in record.comparisons if not c.aa and c.kind == pair.kind
                 and c.a == pair.a and c.b == pair.b
                 and (pair.batch is None or c.batch_size == pair.batch)), None)


def pairs_of(speed: SpeedData) -> list[Pair]:
    """Every comparison the records hold (A/A ones aside), Keras before PyTorch, training,
    native then ONNX Runtime; DEFAULT_PAIRS when there is no record."""
    found = {Pair(c.kind, c.a, c.b, None if c.kind == "training" else c.batch_size)
             for record in speed.specs.values() for c in record.comparisons if not c.aa}
    if not found:
        return list(DEFAULT_PAIRS)
    kinds = ("training", "native", ORT)
    order = {label: i for i, label in enumerate(DELTA_PAIR)}
    return sorted(found, key=lambda p: (kinds.index(p.kind), order.get(p.a, 9), p.a,
                                        order.get(p.b, 9), p.batch or 0))


def floor(speed: SpeedData, kind: str) -> float | None:
    return speed.floor(FLOOR_KIND[kind])


def judge(speed: SpeedData, pair: Pair, ratio: Estimate) -> str:
    """The verdict of a ratio: for a time ratio a ÷ b, "slower" = a takes longer; for an ONNX
    Runtime speed-up (native time ÷ ONNX Runtime time), "faster" = ONNX Runtime is faster."""
    measured = floor(speed, pair.kind)
    word = time_verdict(ratio, measured)
    if pair.kind == ORT:
        word = {"slower": "faster", "faster": "slower"}.get(word, word)
    return word + (NO_FLOOR if measured is None else "")


def framework_name(run: RunData | None, speed: SpeedData, label: str) -> str:
    """How `label` ran: the speed records' description ("Keras 3 on TensorFlow, graph mode,
    XLA off"), else one made from the run's own environment record, else its plain name."""
    described = {r.backends[label] for r in speed.specs.values() if label in r.backends}
    if described:
        return " / ".join(sorted(described))
    backend = ((run.environments if run is not None else {}).get(label) or {}).get(
        "backend") or {}
    mode = f", {backend['compile_mode']} mode" if backend.get("compile_mode") else ""
    if backend.get("keras_backend"):
        major = str(backend.get("keras") or "3").split(".")[0]
        word = _BACKEND_WORDS.get(backend["keras_backend"], backend["keras_backend"])
        return f"Keras {major} on {word}{mode}"
    return _NAMES.get(label, label) + mode


@cache
def _zoo_groups() -> tuple[tuple[str, ...], ...]:
    """Zoo specs that train the same model (same harness.spec.training_hash), 2 or more."""
    from harness.spec import SpecError, list_specs, load_spec, training_hash

    groups: dict[str, list[str]] = {}
    for name in list_specs():
        try:
            groups.setdefault(training_hash(load_spec(name)), []).append(name)
        except SpecError:
            continue
    return tuple(tuple(sorted(g)) for g in groups.values() if len(g) > 1)


def alias_groups(speed: SpeedData) -> dict[str, str]:
    """Spec -> the name its group of aliases is counted under (the first in sorted order of
    those with a speed record, else of all), from the zoo's training hashes and the records'
    `aliases`; specs with no alias absent."""
    groups = [set(g) for g in _zoo_groups()]
    groups += [{r.spec, *r.aliases} for r in speed.specs.values() if r.aliases]
    merged: list[set[str]] = []
    for group in groups:
        touching = [g for g in merged if g & group]
        for g in touching:
            merged.remove(g)
            group |= g
        merged.append(group)
    timed = set(speed.specs)
    return {name: min(group & timed or group) for group in merged for name in group}


def counted_once(names: Iterable[str], aliases: dict[str, str]) -> tuple[list[str], list[str]]:
    """`names` with each alias group's member only (the one it is counted under when present,
    else the first), and the names left out."""
    kept, dropped, seen = [], [], set()
    for name in sorted(names, key=lambda n: (aliases.get(n, n) != n, n)):
        key = aliases.get(name, name)
        (dropped if key in seen else kept).append(name)
        seen.add(key)
    return kept, dropped


def machine_facts(run: RunData) -> dict[str, Any]:
    """The machine as the speed records recorded it (else the run's first job): its
    environment's `machine` block merged over its top level."""
    records = [*run.speed.specs.values(), *run.speed.repeat.values()]
    environment = records[0].environment if records else run.environment
    return {**environment, **(environment.get("machine") or {})}
