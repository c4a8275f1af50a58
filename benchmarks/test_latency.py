"""Inference latency: ONNX Runtime (CPU, CUDA) and each framework's own predictor, per spec x
backend x provider x batch size, from the same weights, as pytest-benchmark records.

Every benchmark of one spec, provider and batch size shares the group `<spec>:<provider>:batch<n>`
so `pytest-benchmark compare` puts ONNX Runtime and the frameworks side by side; `extra_info`
says what really ran (provider_used), the mode, threads and versions. Sessions, IO bindings and
predictors are created before the timed rounds.

Widen with HARNESS_BENCH_SPECS=all, HARNESS_BENCH_PROVIDERS=cpu,cuda (default),
HARNESS_BENCH_BATCH_SIZES=1,32,256, HARNESS_BENCH_BACKENDS, HARNESS_BENCH_SECONDS (timed seconds
per benchmark, default 0.3), HARNESS_BENCH_RUNS (trained weights and their accuracy).

Nothing here asserts on timings: each benchmark's `extra_info["machine_load"]` says how busy the
machine was during its timed rounds (`noisy` beyond harness.machine_load's threshold).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import pytest
from conftest import BenchModels, bench_list, bench_providers, bench_specs

from harness.backends import BackendUnavailable, backend_names
from harness.bench_native import on_gpu, result_device
from harness.env import package_versions
from harness.machine_load import load_mark, load_since
from harness.ort.timing import modes

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

SPECS = bench_specs(["mlp5_bn", "cnn3_k3"])
BACKENDS = bench_list("HARNESS_BENCH_BACKENDS", backend_names())
PROVIDERS = bench_providers()
BATCH_SIZES = [int(size) for size in bench_list("HARNESS_BENCH_BATCH_SIZES", ["1", "32"])]
SECONDS = float(os.environ.get("HARNESS_BENCH_SECONDS", "0.3"))
MIN_ROUNDS, MAX_ROUNDS, WARMUP_ROUNDS = 10, 2000, 5
BARE_ROUNDS, BARE_RUNS = 6, 200  # an even number of rounds: each loop goes first as often

ORT_PARAMS = [pytest.param(spec, backend, provider, mode, batch,
                           id=f"{spec}-{backend}-{provider}-{mode}-batch{batch}")
              for spec in SPECS for backend in BACKENDS for provider in PROVIDERS
              for mode in modes(provider) for batch in BATCH_SIZES]
NATIVE_PARAMS = [pytest.param(spec, backend, provider, batch,
                              id=f"{spec}-{backend}-{provider}-native-batch{batch}")
                 for spec in SPECS for backend in BACKENDS for provider in PROVIDERS
                 for batch in BATCH_SIZES]


def _rounds(fn: Callable[[], Any]) -> int:
    """Rounds filling about SECONDS of timed calls, from a short calibration."""
    for _ in range(3):
        fn()
    start = time.perf_counter()
    fn()
    per_call = max(time.perf_counter() - start, 1e-6)
    return int(min(MAX_ROUNDS, max(MIN_ROUNDS, SECONDS / per_call)))


def _info(spec: str, backend: str, runtime: str, provider: str, provider_used: str, mode: str,
          batch: int, threads: int, level: str | None, models: BenchModels) -> dict[str, Any]:
    source, accuracy = models.source(spec, backend)
    return {"spec": spec, "backend": backend, "runtime": runtime, "provider": provider,
            "provider_used": provider_used, "mode": mode, "batch_size": batch,
            "threads": threads, "graph_optimization_level": level,
            "versions": package_versions(), "weights": source.description, **accuracy}


def _timed_rounds(benchmark: Any, fn: Callable[[], Any]) -> None:
    """The benchmark's rounds, with the machine's load over exactly those rounds."""
    rounds = _rounds(fn)
    mark = load_mark()
    benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=WARMUP_ROUNDS)
    benchmark.extra_info["machine_load"] = load_since(mark)


def _onnx_path(models: BenchModels, spec: str, backend: str) -> Any:
    try:
        return models.onnx(spec, backend)
    except BackendUnavailable as exc:  # the framework that exports is missing
        pytest.skip(f"unavailable: {exc}")


@pytest.mark.parametrize(("spec", "backend", "provider", "mode", "batch"), ORT_PARAMS)
def test_onnxruntime_latency(benchmark: Any, bench_models: BenchModels, spec: str, backend: str,
                             provider: str, mode: str, batch: int) -> None:
    from harness.ort import ProviderUnavailable, create_session, session_info
    from harness.ort.providers import get_provider
    from harness.ort.timing import IoBindingRunner, session_runner

    path = _onnx_path(bench_models, spec, backend)
    try:
        session = create_session(path, provider, threads=bench_models.threads)
    except ProviderUnavailable as exc:
        pytest.skip(f"unavailable: {exc}")
    x = bench_models.inputs(spec, batch)
    run = (IoBindingRunner(session, x, get_provider(provider).device_type)
           if mode == "io_binding" else session_runner(session, x))
    info = session_info(session)
    benchmark.group = f"{spec}:{provider}:batch{batch}"
    benchmark.extra_info.update(_info(spec, backend, "onnxruntime", provider,
                                      session.get_providers()[0], mode, batch,
                                      bench_models.threads, info["graph_optimization_level"],
                                      bench_models))
    _timed_rounds(benchmark, run)


@pytest.mark.parametrize(("spec", "backend", "provider", "batch"), NATIVE_PARAMS)
def test_native_latency(benchmark: Any, bench_models: BenchModels, spec: str, backend: str,
                        provider: str, batch: int) -> None:
    try:
        framework, model = bench_models.built(spec, backend, provider)
    except BackendUnavailable as exc:
        pytest.skip(f"unavailable: {exc}")
    predict = framework.native_predictor(model, bench_models.inputs(spec, batch))
    device = result_device(predict())
    if on_gpu(device) != (provider == "cuda"):
        pytest.skip(f"unavailable: {backend} ran on {device}, not on {provider}")
    benchmark.group = f"{spec}:{provider}:batch{batch}"
    benchmark.extra_info.update(_info(spec, backend, "native", provider, device, "native", batch,
                                      bench_models.threads, None, bench_models))
    benchmark.extra_info["compile_mode"] = framework.environment().get("compile_mode")
    _timed_rounds(benchmark, predict)


@pytest.mark.parametrize("spec", SPECS)
def test_ort_vs_bare_session_loop(benchmark: Any, bench_models: BenchModels, spec: str) -> None:
    """The harness's ORT timing against a bare per-call `session.run` loop on the same file
    and batch, p50 against p50 and mean against mean, in rounds that alternate which loop runs
    first. The ratios (median over rounds, and every round with its machine load) go to
    `extra_info`; none is asserted: on a shared machine a ratio is a measurement, not a verdict.
    """
    from harness.ort import create_session, harness_vs_bare
    from harness.ort.timing import session_runner

    backend = next((name for name in BACKENDS if _exportable(bench_models, spec, name)), None)
    if backend is None:
        pytest.skip(f"unavailable: no backend can export {spec}")
    session = create_session(bench_models.onnx(spec, backend), "cpu",
                             threads=bench_models.threads)
    x = bench_models.inputs(spec, 1)
    rounds = [harness_vs_bare(session, x, runs=BARE_RUNS, warmup=5, harness_first=i % 2 == 0)
              for i in range(BARE_ROUNDS)]
    benchmark.group = f"ort-vs-bare:{spec}"
    benchmark.extra_info.update({
        "spec": spec, "backend": backend, "runtime": "onnxruntime", "provider": "cpu",
        "provider_used": session.get_providers()[0], "mode": "session_run", "batch_size": 1,
        "threads": bench_models.threads, "versions": package_versions(),
        "p50_ratio": statistics.median(r["p50_ratio"] for r in rounds),
        "mean_ratio": statistics.median(r["mean_ratio"] for r in rounds),
        "noisy_rounds": sum(r["machine_load"]["noisy"] for r in rounds), "rounds": rounds,
    })
    _timed_rounds(benchmark, session_runner(session, x))


def _exportable(models: BenchModels, spec: str, backend: str) -> bool:
    try:
        models.onnx(spec, backend)
    except BackendUnavailable:
        return False
    return True
