"""Inference latency of every installed backend, with the timing protocol (harness.speed):
each backend (Keras on TensorFlow, on JAX, on PyTorch; PyTorch) in a process of its own holding
the spec's model, its ONNX export and an ONNX Runtime session; per batch size, windows of a
fixed number of predictor calls, interleaved pair by pair: each framework's native predictor
against PyTorch's, each framework against ONNX Runtime on its own export, and PyTorch against a
second copy of itself (A/A), whose interval is the noise floor a verdict must clear. On `cuda`
the frameworks run on the GPU and ONNX Runtime on its CUDA provider (inputs from host memory).

`extra_info["ratios"]` holds every comparison (ratio a ÷ b with its 95 % interval, verdict,
milliseconds per call of each side); the rows are printed and gathered in the suite's summary.
The ORT-vs-bare benchmark checks the harness's own ORT loop against a bare `session.run` loop.

HARNESS_BENCH_SPECS (default mlp5_bn,cnn3_k3), HARNESS_BENCH_BACKENDS (default: all
installed), HARNESS_BENCH_PROVIDERS (cpu,cuda by default: cuda skips without a GPU),
HARNESS_BENCH_BATCH_SIZES (default 1,32), HARNESS_BENCH_WINDOWS (default 7),
HARNESS_BENCH_THREADS. Nothing here fails on a timing.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

import pytest
from conftest import BenchModels, bench_int, bench_list, bench_providers, bench_specs
from ratios import record_rows, row_line

from harness.backends import BackendUnavailable, backend_names, not_installed
from harness.measure.environment import package_versions

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

SPECS = bench_specs(["mlp5_bn", "cnn3_k3"])
BACKENDS = bench_list("HARNESS_BENCH_BACKENDS", backend_names())
PROVIDERS = bench_providers()
BATCH_SIZES = [int(size) for size in bench_list("HARNESS_BENCH_BATCH_SIZES", ["1", "32"])]
WINDOWS = bench_int("HARNESS_BENCH_WINDOWS", 7)
REFERENCE = "torch"
BARE_ROUNDS, BARE_RUNS = 6, 200  # an even number of rounds: each loop goes first as often


def _device_missing(device: str, threads: int) -> str | None:
    """Why the reference (PyTorch) cannot run on `device` here, or None."""
    from harness.backends import get_backend

    try:
        get_backend(REFERENCE, device=device, threads=threads)
    except BackendUnavailable as exc:
        return str(exc)
    return None


@pytest.mark.parametrize("device", PROVIDERS)
@pytest.mark.parametrize("spec_name", SPECS)
def test_inference_ratios_of_every_backend(benchmark: Any, spec_name: str, device: str,
                                           bench_threads: int,
                                           capsys: pytest.CaptureFixture) -> None:
    from harness.measure.protocol import Protocol
    from harness.spec import load_spec
    from harness.speed.spec_timing import SpecTiming, time_spec

    missing = {name: not_installed(name) for name in BACKENDS if not_installed(name)}
    backends = sorted((name for name in BACKENDS if name not in missing),
                      key=lambda name: name == REFERENCE)
    if REFERENCE not in backends:
        pytest.skip("the reference and the A/A comparison run PyTorch: not installed")
    if (why := _device_missing(device, bench_threads)) is not None:
        pytest.skip(f"unavailable: {why}")
    spec = load_spec(spec_name)
    work = SpecTiming(spec, backends, bench_threads, None, spec.train.seed, noise=True,
                      batch_sizes=BATCH_SIZES, device=device, training=False)
    benchmark.group = f"inference-ratios:{spec_name}:{device}"
    record = benchmark.pedantic(time_spec, args=(work, Protocol(windows=WINDOWS)),
                                kwargs={"log": lambda line: None}, rounds=1, iterations=1)
    benchmark.extra_info.update({"spec": spec_name, "device": device, "threads": bench_threads,
                                 "windows": WINDOWS, "reference": REFERENCE,
                                 "not_installed": missing, "versions": package_versions()})
    rows = record_rows(benchmark, f"{spec_name} inference on {device}", record)
    with capsys.disabled():
        print(f"\n{spec_name} inference on {device} ({bench_threads} threads):")
        for row in rows:
            print("  " + row_line(row))
    assert all(math.isfinite(row["ratio"]) for row in rows)
    native = {(row["a"], row["batch_size"]) for row in rows if row["kind"] == "native"}
    assert native == {(name, batch) for name in backends if name != REFERENCE
                      for batch in BATCH_SIZES} | {(REFERENCE + "#1", b) for b in BATCH_SIZES}


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
    benchmark(session_runner(session, x))


def _exportable(models: BenchModels, spec: str, backend: str) -> bool:
    try:
        models.onnx(spec, backend)
    except BackendUnavailable:
        return False
    return True
