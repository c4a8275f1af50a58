"""Inference latency of one spec: ONNX Runtime (CPU, CUDA) next to each framework's own
predictor, from the same weights; and training speed read from runs. The library behind
`harness bench`.

Every figure is taken by `harness.measure.timing.measure`, with sessions and predictors created
outside
the timed region. A provider or device that cannot run gives records with status "unavailable"
and the reason, never numbers measured somewhere else under its label.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harness.backends import Backend
from harness.backends.onnx_io import DEFAULT_OPSET
from harness.export.driver import (
    WeightsSource,
    convert_to_onnx,
    recorded_source,
    trained_source,
    weights_source,
)
from harness.latency.native import NativeModel, built_from, native_records, natives_on_devices
from harness.latency.onnx_runtime import ort_records
from harness.latency.records import failure_reason, latency_record, noisy_record
from harness.latency.variants import (
    BackendBench,
    VariantBench,
    VariantSettings,
    write_framework_replay,
)
from harness.measure.environment import environment, utc_now
from harness.measure.machine_load import is_noisy
from harness.measure.timing import validate_measure_args
from harness.ort.providers import PROVIDERS  # no onnxruntime import: harness.ort is lazy
from harness.ort.timing import modes
from harness.records.io import RESULT_SCHEMA_VERSION, read_json, write_json_atomic
from harness.spec import ModelSpec, spec_hash
from harness.training import TrainedModel

LATENCY_SUFFIX = ".latency.json"


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _reusable_export(onnx_path: Path, source: WeightsSource,
                     backend_name: str) -> dict[str, Any] | None:
    """The ONNX description of `onnx_path`'s export record (`harness export`) where it is an
    export of these very weights, else None."""
    record_path = onnx_path.with_name(onnx_path.name + ".json")
    if not (onnx_path.is_file() and record_path.is_file()):
        return None
    try:
        record = read_json(record_path)
        reusable = (record.get("kind") == "export" and record.get("backend") == backend_name
                    and record["spec"]["hash"] == spec_hash(source.spec)
                    and record.get("weights") == recorded_source(source.description,
                                                                 onnx_path.parent)
                    and record["onnx"]["sha256"] == _sha256(onnx_path))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # unreadable or foreign record: export again
    return record["onnx"] if reusable else None


def export_checked(backend: Backend, model: Any, source: WeightsSource,
                   onnx_path: Path) -> dict[str, Any]:
    """Export `model` to `onnx_path`; convert_to_onnx runs the ONNX checks (a broken file is
    not worth timing) and describes the file. No parity: that is export's."""
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    return convert_to_onnx(backend, model, source.spec, onnx_path, DEFAULT_OPSET)


def validate_lists(backends: Iterable[str], providers: Iterable[str],
                   batch_sizes: Iterable[int]) -> None:
    """ValueError naming the first unknown backend/provider or non-positive batch size."""
    from harness.backends import backend_names

    for kind, given, known in (("backend", backends, backend_names()),
                               ("provider", providers, list(PROVIDERS))):
        given = list(given)
        if not given:
            raise ValueError(f"no {kind} given; expected some of {known}")
        for value in given:
            if value not in known:
                raise ValueError(f"unknown {kind} {value!r}; expected one of {known}")
    sizes = list(batch_sizes)
    if not sizes:
        raise ValueError("no batch size given")
    for size in sizes:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"batch sizes must be positive integers, got {size!r}")


def _timing(batch_sizes: Sequence[int], warmup: int, min_runs: int, min_seconds: float,
            max_seconds: float | None) -> dict[str, Any]:
    """`measure`'s settings, checked."""
    timing = {"warmup": warmup, "min_runs": min_runs, "min_seconds": min_seconds,
              "max_seconds": max_seconds}
    validate_measure_args(batch_size=max(batch_sizes), **timing)
    return timing


def bench_backend(source: WeightsSource, backend_name: str, *, providers: Sequence[str],
                  batch_sizes: Sequence[int], onnx_path: Path, threads: int | None = None,
                  graph_optimization: str = "all", warmup: int = 10, min_runs: int = 50,
                  min_seconds: float = 1.0, max_seconds: float | None = None,
                  x: np.ndarray, environments: dict[str, Any] | None = None,
                  strict_providers: bool = False, tf32: bool = False,
                  layout: str = "channels_last",
                  variants: VariantBench | None = None) -> list[dict[str, Any]]:
    """Latency records of one backend: its ONNX export in ONNX Runtime and its own predictor,
    for every provider x batch size (ORT records per mode), the backend built on each device
    from the source's weights and exported (unless `onnx_path` already holds their export).
    `tf32` and `layout` set the native frameworks' maths and memory layout
    (harness.training.TrainConfig); the rest as `time_backend` takes it."""
    validate_lists([backend_name], providers, batch_sizes)
    timing = _timing(batch_sizes, warmup, min_runs, min_seconds, max_seconds)
    onnx_path = Path(onnx_path)
    reused = _reusable_export(onnx_path, source, backend_name)
    natives = natives_on_devices(built_from(source, backend_name, threads, tf32, layout),
                                 providers)
    # Without the framework, an earlier export of the same weights still runs in ORT.
    info, problem = (reused, None) if reused else _export(natives["cpu"], source, onnx_path)
    return time_backend(BackendBench(
        source, backend_name, natives, onnx_path, problem, list(providers), list(batch_sizes),
        x, threads, graph_optimization, timing, strict_providers, info),
        reused=reused is not None, environments=environments, variants=variants)


def bench_trained(trained: TrainedModel, export: dict[str, Any], onnx_path: Path, *,
                  providers: Sequence[str], batch_sizes: Sequence[int],
                  threads: int | None = None, warmup: int = 10, min_runs: int = 50,
                  min_seconds: float = 1.0, environments: dict[str, Any] | None = None,
                  strict_providers: bool = False,
                  variants: VariantBench | None = None) -> list[dict[str, Any]]:
    """`bench_backend` of a model trained in this process and its export (`export`, its
    record, at `onnx_path`): the trained model on its own device, built only on the others;
    its test images as the input batch; the export's hash."""
    name = trained.config.backend
    validate_lists([name], providers, batch_sizes)
    timing = _timing(batch_sizes, warmup, min_runs, min_seconds, None)
    natives = natives_on_devices(trained.on_device, providers)
    x = repeated(trained.arrays.x_test, max(batch_sizes))
    return time_backend(BackendBench(
        trained_source(trained), name, natives, Path(onnx_path), None, list(providers),
        list(batch_sizes), x, threads, "all", timing, strict_providers, export["onnx"]),
        reused=True, environments=environments, variants=variants)


def time_backend(bench: BackendBench, *, reused: bool, environments: dict[str, Any] | None,
                 variants: VariantBench | None) -> list[dict[str, Any]]:
    """The records of `bench` (prepared: natives, export): ORT and native per provider x batch
    size. `reused`: the export was there before. `environments`, when given, is filled with
    `{backend: {provider: backend.environment()}}`. `strict_providers`: a device ORT session
    with any node on the CPU is recorded unavailable, not timed. `variants`, when given, times
    and scores its variants and the accuracy of these records."""
    if len(bench.x) < max(bench.batch_sizes):
        raise ValueError(f"x holds {len(bench.x)} samples, fewer than batch size "
                         f"{max(bench.batch_sizes)}")
    name, cpu, problem = bench.backend_name, bench.natives["cpu"], bench.onnx_problem
    # named as the latency record beside it (bench_spec's out_dir, a matrix job's folder) sees it
    model_info = {"file": bench.onnx_path.name, "reused": reused,
                  "sha256": bench.onnx_info["sha256"] if problem is None else None}
    records: list[dict[str, Any]] = []
    for provider in bench.providers:
        if problem is None:
            records += ort_records(bench.onnx_path, name, provider, bench.batch_sizes, bench.x,
                                   bench.threads, bench.graph_optimization, bench.timing,
                                   model_info, bench.strict_providers)
        else:
            records += [latency_record("onnxruntime", name, provider, mode, batch,
                                       bench.threads, status=problem[0], reason=problem[1],
                                       graph_optimization=bench.graph_optimization)
                        for batch in bench.batch_sizes for mode in modes(provider)]
        records += native_records(bench.natives[provider], name, provider, bench.batch_sizes,
                                  bench.x, bench.threads, bench.timing, environments)
    if problem is None and cpu.problem is None:  # test_data_set_0 beside the export
        write_framework_replay(cpu.backend, cpu.model, bench.onnx_path, bench.x)
    if variants is not None:
        variants.run(bench, records)
    return records


def _export(native: NativeModel, source: WeightsSource,
            onnx_path: Path) -> tuple[dict[str, Any] | None, tuple[str, str] | None]:
    """Export the CPU native model to `onnx_path` (checked): the file's description, or the
    (status, reason) that keeps the framework or its export from running."""
    if native.problem is not None:
        return None, native.problem
    try:
        return export_checked(native.backend, native.model, source, onnx_path), None
    except Exception as exc:  # noqa: BLE001 - converter failures become records
        return None, ("failed", failure_reason(exc))


def speedups(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """ONNX Runtime vs the framework's own predictor, p50 against p50, per backend x provider
    x batch x ORT mode; > 1 means ONNX Runtime is faster. Only pairs that both ran; `noisy`
    when either side was timed on a busy machine."""
    native = {(r["backend"], r["provider"], r["batch_size"]): r["stats"]
              for r in records if r["runtime"] == "native" and r["status"] == "ok"}
    rows = []
    for r in records:
        key = (r["backend"], r["provider"], r["batch_size"])
        if r["runtime"] != "onnxruntime" or r["status"] != "ok" or key not in native:
            continue
        ort_ms, native_ms = r["stats"]["p50_ms"], native[key]["p50_ms"]
        rows.append({"backend": key[0], "provider": key[1], "batch_size": key[2],
                     "mode": r["mode"], "native_p50_ms": native_ms,
                     "onnxruntime_p50_ms": ort_ms,
                     "speedup": native_ms / ort_ms if ort_ms > 0 else math.inf,
                     "noisy": noisy_record(r) or is_noisy(native[key].get("machine_load"))})
    return rows


def input_batch(source: WeightsSource, size: int, data_dir: Path | None = None,
                download: bool | None = None) -> np.ndarray:
    """`size` test images in the spec's input layout (repeated when the test set is smaller);
    `download`: harness.data.datasets.may_download's."""
    from harness.data import load_arrays

    arrays = load_arrays(source.spec.input, data_dir=data_dir, limit=1,
                         limit_test=min(size, 10_000), download=download)
    return repeated(arrays.x_test, size)


def repeated(x: np.ndarray, size: int) -> np.ndarray:
    """The first `size` rows of `x` (repeated when it has fewer), contiguous float32."""
    if len(x) < size:
        x = np.concatenate([x] * math.ceil(size / len(x)))
    return np.ascontiguousarray(x[:size], dtype=np.float32)


def sources_by_backend(spec_ref: str | Path | ModelSpec | None, backends: Sequence[str],
                       run_dirs: Sequence[Path] | None) -> dict[str, WeightsSource]:
    """Each backend's weights: its own training run if given, else the first run given (the
    canonical layout loads into any backend), else the spec's initial weights."""
    if not run_dirs:
        source = weights_source(spec_ref, None)
        return dict.fromkeys(backends, source)
    runs = [weights_source(spec_ref, Path(run)) for run in run_dirs]
    hashes = {spec_hash(run.spec) for run in runs}
    if len(hashes) > 1:
        raise ValueError(f"the runs {[str(r) for r in run_dirs]} trained different specs")
    by_backend: dict[str, WeightsSource] = {}
    for run in runs:
        trained = run.description.get("trained_backend")
        if trained in by_backend:
            raise ValueError(f"two runs trained in {trained!r} given; give one per backend")
        by_backend[trained] = run
    return {name: by_backend.get(name, runs[0]) for name in backends}


def latency_path(out_dir: Path, spec_name: str) -> Path:
    return Path(out_dir) / f"{spec_name}{LATENCY_SUFFIX}"


def latency_result(spec: ModelSpec, weights: dict[str, Any], settings: dict[str, Any],
                   records: list[dict[str, Any]], environments: dict[str, Any]) -> dict[str, Any]:
    """The `latency.json` record (kind "latency") of `harness bench` and of matrix jobs."""
    return {
        "schema_version": RESULT_SCHEMA_VERSION,
        "kind": "latency",
        "spec": {"name": spec.name, "hash": spec_hash(spec)},
        "weights": weights,
        "settings": settings,
        "records": records,
        "speedups": speedups(records),
        "created_utc": utc_now(),
        "environment": environment(environments),
    }


def bench_spec(spec_ref: str | Path | ModelSpec | None, *, backends: Sequence[str],
               providers: Sequence[str], batch_sizes: Sequence[int],
               run_dirs: Sequence[Path] | None = None, out_dir: Path,
               threads: int | None = None, graph_optimization: str = "all", warmup: int = 10,
               min_runs: int = 50, min_seconds: float = 1.0, max_seconds: float | None = None,
               data_dir: Path | None = None, strict_providers: bool = False,
               download: bool | None = None, **variant_options: Any) -> dict[str, Any]:
    """Time every backend x provider x batch size; write `<out_dir>/<spec>.latency.json`.
    `variant_options`: harness.latency.variants.VariantSettings' (ort_variants, compile_modes,
    ...). `download`: for missing data files, harness.data.may_download's (the first read here)."""
    validate_lists(backends, providers, batch_sizes)
    variants = VariantBench(VariantSettings(data_dir=data_dir, **variant_options))
    sources = sources_by_backend(spec_ref, backends, run_dirs)
    spec = next(iter(sources.values())).spec
    x = input_batch(next(iter(sources.values())), max(batch_sizes), data_dir, download)
    out_dir = Path(out_dir)
    envs: dict[str, Any] = {}
    records: list[dict[str, Any]] = []
    for name in backends:
        records += bench_backend(
            sources[name], name, providers=providers, batch_sizes=batch_sizes,
            onnx_path=out_dir / f"{spec.name}.{name}.onnx", threads=threads,
            graph_optimization=graph_optimization, warmup=warmup, min_runs=min_runs,
            min_seconds=min_seconds, max_seconds=max_seconds, x=x, environments=envs,
            strict_providers=strict_providers, variants=variants)
    settings = {"backends": list(backends), "providers": list(providers),
                "batch_sizes": list(batch_sizes), "threads": threads,
                "graph_optimization": graph_optimization, "warmup": warmup,
                "min_runs": min_runs, "min_seconds": min_seconds, "max_seconds": max_seconds,
                "strict_providers": strict_providers, **variants.settings.as_dict()}
    result = latency_result(spec, {name: recorded_source(source.description, out_dir)
                                   for name, source in sources.items()}, settings, records, envs)
    result.update(variants.result())
    write_json_atomic(latency_path(out_dir, spec.name), result)
    return result


