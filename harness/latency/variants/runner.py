"""Time and score every variant of one backend beside `harness.latency.bench`'s own records.

`harness.latency.bench.time_backend` times the float32 export in ONNX Runtime and the eager
framework on each device; with a VariantBench it then hands over (`run`): every requested ONNX
Runtime variant and the compiled framework get latency records of the same schema (plus
`variant`), and every record — the bench's own included — gets the accuracy of its variant on
its provider, measured on the test set, and the gate's verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.backends import BackendUnavailable
from harness.backends.onnx_io import check_file
from harness.data import Arrays, load_arrays
from harness.latency.native import native_batch_records
from harness.latency.onnx_runtime import ort_records
from harness.latency.records import failure_reason, latency_record
from harness.latency.variants import accuracy as acc
from harness.latency.variants.catalog import (
    COMPILED,
    DEFAULT_ACCURACY_GATE,
    EAGER,
    ORT_VARIANTS,
    baseline_variant,
    check_accuracy_gate,
    check_compile_modes,
    expand_ort_variants,
)
from harness.latency.variants.files import BUILDERS, build_variant_file, variant_path
from harness.latency.variants.replay import REPLAY_IMAGES, write_replay
from harness.ort.providers import ProviderUnavailable
from harness.ort.timing import modes
from harness.spec.shapes import num_classes


@dataclass(frozen=True)
class VariantSettings:
    """What to time beside the float32 export and the eager framework; validated here."""

    ort_variants: tuple[str, ...] = ()
    compile_modes: tuple[str, ...] = (EAGER,)
    accuracy_gate: float = DEFAULT_ACCURACY_GATE
    data_dir: Path | None = None
    limit_test: int | None = None  # accuracy on the first N test images (default: all)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ort_variants", tuple(expand_ort_variants(self.ort_variants)))
        object.__setattr__(self, "compile_modes",
                           tuple(check_compile_modes(self.compile_modes)))
        object.__setattr__(self, "accuracy_gate", check_accuracy_gate(self.accuracy_gate))

    @property
    def active(self) -> bool:
        return bool(self.ort_variants) or COMPILED in self.compile_modes

    def as_dict(self) -> dict[str, Any]:
        return {"ort_variants": list(self.ort_variants),
                "compile_modes": list(self.compile_modes),
                "accuracy_gate": self.accuracy_gate, "limit_test": self.limit_test}


@dataclass
class BackendBench:
    """One backend's part of a bench, as `bench_backend` (or a matrix job) prepared it.
    `natives` maps each provider to bench's `NativeModel` (backend, model, problem);
    `onnx_problem` is (status, reason) when the float32 export is missing, `onnx_info` its
    checks' description (harness.backends.onnx_io.check_file: hash included) where known."""

    source: Any
    backend_name: str
    natives: dict[str, Any]
    onnx_path: Path
    onnx_problem: tuple[str, str] | None
    providers: list[str]
    batch_sizes: list[int]
    x: np.ndarray
    threads: int | None
    graph_optimization: str
    timing: dict[str, Any]
    strict_providers: bool = False
    onnx_info: dict[str, Any] | None = None

    def export_info(self) -> dict[str, Any]:
        """The float32 export's checks: as its export described them, else checked now."""
        if self.onnx_info is None:
            self.onnx_info = check_file(self.onnx_path, tuple(self.source.spec.input.shape),
                                        num_classes(self.source.spec))
        # the export's own notes (converter warnings) stay in its export record
        return {k: v for k, v in self.onnx_info.items() if k != "converter_warnings"}


@dataclass
class _Reference:
    """The float32 model's test-set probabilities that every variant is compared with; None
    where there is none, and then `description` says why."""

    probabilities: np.ndarray | None
    accuracy: float | None
    description: str


@dataclass
class VariantBench:
    """Collects `variants` (one entry per backend x variant: file, accuracy per provider) and
    `records` (latency records of the variants) over the backends of one bench. `test`: the
    test set the variants are scored on, loaded at the first use where not given."""

    settings: VariantSettings
    variants: list[dict[str, Any]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    test: Arrays | None = None

    def result(self) -> dict[str, Any]:
        return {"variants": self.variants, "variant_records": self.records}

    def run(self, job: BackendBench, baseline: list[dict[str, Any]]) -> None:
        """Score the bench's own records of `job` and time and score every variant."""
        if not self.settings.active:
            return
        test = self._test_arrays(job.source)
        reference = _reference(job, test)
        self._baseline(job, baseline, test, reference)
        for name in self.settings.ort_variants:
            if name != baseline_variant(job.graph_optimization):
                self._ort_variant(job, name, test, reference)
        if COMPILED in self.settings.compile_modes:
            self._compiled(job, test, reference)

    def _test_arrays(self, source: Any) -> Arrays:
        if self.test is None:
            self.test = load_arrays(source.spec.input, data_dir=self.settings.data_dir,
                                    limit=1, limit_test=self.settings.limit_test)
        return self.test

    def _entry(self, job: BackendBench, variant: str, runtime: str, reference: _Reference,
               **fields: Any) -> dict[str, Any]:
        entry = {"backend": job.backend_name, "variant": variant, "runtime": runtime,
                 "status": "ok", "reason": None, "baseline": False,
                 "reference": reference.description,
                 "reference_accuracy": reference.accuracy, "accuracy": {}, **fields}
        self.variants.append(entry)
        return entry

    def _score(self, entry: dict[str, Any], provider: str, scores: dict[str, Any],
               reference: _Reference, records: list[dict[str, Any]]) -> None:
        """Put a provider's accuracy (and the gate's verdict) into the entry and beside every
        latency record of that provider."""
        if reference.accuracy is not None:
            scores["gate"] = acc.gate(scores, reference.accuracy, self.settings.accuracy_gate)
        entry["accuracy"][provider] = scores
        passed = (scores.get("gate") or {}).get("passed")
        for record in records:
            record.update(variant=entry["variant"], accuracy=scores["accuracy"],
                          fails_accuracy=passed is False)

    def _baseline(self, job: BackendBench, baseline: list[dict[str, Any]], test: Arrays,
                  reference: _Reference) -> None:
        level = job.graph_optimization
        ort = self._entry(job, baseline_variant(level), "onnxruntime", reference,
                          baseline=True, precision="float32", graph_optimization=level,
                          file=job.onnx_path.name)
        if job.onnx_problem is None:
            ort["onnx"] = job.export_info()
        else:
            ort.update(status=job.onnx_problem[0], reason=job.onnx_problem[1])
        native = self._entry(job, EAGER, "native", reference, baseline=True,
                             precision="float32")
        for provider in job.providers:
            mine = [r for r in baseline if r["provider"] == provider]
            self._score(ort, provider, _ort_scores(job, job.onnx_path, provider, level, test,
                                                   reference),
                        reference, [r for r in mine if r["runtime"] == "onnxruntime"])
            self._score(native, provider, _native_scores(job, provider, None, test, reference),
                        reference, [r for r in mine if r["runtime"] == "native"])

    def _ort_variant(self, job: BackendBench, name: str, test: Arrays,
                     reference: _Reference) -> None:
        variant = ORT_VARIANTS[name]
        level = variant.graph_optimization or job.graph_optimization
        entry = self._entry(job, name, "onnxruntime", reference, precision=variant.precision,
                            graph_optimization=level, description=variant.description)
        path, problem = _variant_file(job, name, entry, self.settings.data_dir)
        for provider in job.providers:
            if problem is None and provider not in variant.providers:
                reason = (f"{name} is timed on the {', '.join(variant.providers)} provider "
                          "only")
                records = _not_run(job, "onnxruntime", provider, ("unavailable", reason))
                scores = acc.not_measured("unavailable", reason)
            elif problem is not None:
                records = _not_run(job, "onnxruntime", provider, problem)
                scores = acc.not_measured(*problem)
            else:
                records = _variant_records(job, path, provider, level, entry["onnx"]["sha256"])
                scores = _ort_scores(job, path, provider, level, test, reference)
            self._score(entry, provider, scores, reference, records)
            self.records += records

    def _compiled(self, job: BackendBench, test: Arrays, reference: _Reference) -> None:
        entry = self._entry(job, COMPILED, "native", reference, precision="float32",
                            compile_seconds={})
        for provider in job.providers:
            native, twin = job.natives[provider], None
            problem = native.problem
            if problem is None:
                try:
                    twin = native.backend.compiled(native.model)
                except BackendUnavailable as exc:
                    problem = ("unavailable", str(exc))
                except Exception as exc:  # noqa: BLE001 - recorded; other variants still run
                    problem = ("failed", failure_reason(exc))
            if problem is not None:
                records = _not_run(job, "native", provider, problem)
                scores = acc.not_measured(*problem)
            else:  # timed first: the first call of each batch size is its compilation
                records = [native_batch_records(native.backend, twin, job.backend_name, provider,
                                                batch, job.x, job.threads, job.timing)
                           for batch in job.batch_sizes]
                entry["compile_seconds"][provider] = records[0].get("first_call_seconds")
                scores = _native_scores(job, provider, twin, test, reference)
            self._score(entry, provider, scores, reference, records)
            self.records += records


def _reference(job: BackendBench, test: Arrays) -> _Reference:
    """The float32 export in ONNX Runtime on the CPU, else the eager framework on the CPU."""
    try:
        if job.onnx_problem is None:
            probabilities = acc.ort_probabilities(job.onnx_path, "cpu", test.x_test, job.threads,
                                                  job.graph_optimization)
            what = (f"float32 export, ONNX Runtime CPU (graph optimisation "
                    f"{job.graph_optimization!r})")
        elif job.natives["cpu"].problem is None:
            native = job.natives["cpu"]
            probabilities = native.backend.predict(native.model, test.x_test)
            what = f"float32 {job.backend_name} model, eager, on the CPU"
        else:
            return _Reference(None, None, "none: neither the export nor the framework ran")
    except Exception as exc:  # noqa: BLE001 - recorded: without it the gate judges nothing
        return _Reference(None, None, f"none: {failure_reason(exc)}")
    accuracy = float((probabilities.argmax(axis=1) == test.y_test).mean())
    return _Reference(probabilities, accuracy, what)


def _compare(probabilities: np.ndarray, test: Arrays, reference: _Reference) -> dict[str, Any]:
    return acc.scores(probabilities, test.y_test, reference.probabilities)


def _ort_scores(job: BackendBench, path: Path, provider: str, level: str, test: Arrays,
                reference: _Reference) -> dict[str, Any]:
    if job.onnx_problem is not None:
        return acc.not_measured(*job.onnx_problem)
    try:
        probabilities = acc.ort_probabilities(path, provider, test.x_test, job.threads, level)
    except ProviderUnavailable as exc:
        return acc.not_measured("unavailable", str(exc))
    except Exception as exc:  # noqa: BLE001 - recorded beside the latency
        return acc.not_measured("failed", failure_reason(exc))
    return _compare(probabilities, test, reference)


def _native_scores(job: BackendBench, provider: str, model: Any, test: Arrays,
                   reference: _Reference) -> dict[str, Any]:
    """The framework's accuracy on `provider`'s device: `model`, else the eager one."""
    native = job.natives[provider]
    if native.problem is not None:
        return acc.not_measured(*native.problem)
    try:
        probabilities = native.backend.predict(model if model is not None else native.model,
                                               test.x_test, batch_size=max(job.batch_sizes))
    except Exception as exc:  # noqa: BLE001 - recorded beside the latency
        return acc.not_measured("failed", failure_reason(exc))
    return _compare(probabilities, test, reference)


def _variant_file(job: BackendBench, name: str, entry: dict[str, Any],
                  data_dir: Path | None) -> tuple[Path, tuple[str, str] | None]:
    """The variant's file (built for quantised and float16 variants, the export itself for
    graph optimisation levels) described in `entry`; or the problem why there is none."""
    if job.onnx_problem is not None:
        entry.update(status=job.onnx_problem[0], reason=job.onnx_problem[1])
        return job.onnx_path, job.onnx_problem
    try:
        if name not in BUILDERS:
            entry.update(file=job.onnx_path.name, onnx=job.export_info())
            return job.onnx_path, None
        entry.update(build_variant_file(name, job.onnx_path, job.source.spec.input,
                                        data_dir, num_classes(job.source.spec)))
        path = variant_path(job.onnx_path, name)
        outputs = acc.ort_probabilities(path, "cpu", job.x[:REPLAY_IMAGES], job.threads, "all")
        entry["replay"] = write_replay(path, job.x[:REPLAY_IMAGES], outputs).relative_to(
            job.onnx_path.parent).as_posix()
    except Exception as exc:  # noqa: BLE001 - a quantiser or converter failure is a record
        problem = ("failed", failure_reason(exc))
        entry.update(status=problem[0], reason=problem[1])
        return job.onnx_path, problem
    return path, None


def _variant_records(job: BackendBench, path: Path, provider: str, level: str, sha256: str
                     ) -> list[dict[str, Any]]:
    model_info = {"file": path.relative_to(job.onnx_path.parent).as_posix(), "reused": False,
                  "sha256": sha256}
    return ort_records(path, job.backend_name, provider, job.batch_sizes, job.x, job.threads,
                       level, job.timing, model_info, job.strict_providers)


def _not_run(job: BackendBench, runtime: str, provider: str, problem: tuple[str, str]
             ) -> list[dict[str, Any]]:
    mode_list = modes(provider) if runtime == "onnxruntime" else ("native",)
    return [latency_record(runtime, job.backend_name, provider, mode, batch, job.threads,
                    status=problem[0], reason=problem[1])
            for batch in job.batch_sizes for mode in mode_list]
