"""harness.ort.timing: ORT latency records on a verified provider, never a mislabelled one."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from harness.ort import ProviderUnavailable, create_session  # noqa: E402
from harness.ort.timing import (  # noqa: E402
    IO_BINDING,
    SESSION_RUN,
    IoBindingRunner,
    bare_session_loop,
    harness_vs_bare,
    measure_session,
    modes,
    ort_latency,
)

FAST = {"warmup": 2, "min_runs": 10, "min_seconds": 0.0}
TinyModel = tuple[Path, np.ndarray, np.ndarray]


def reference(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    logits = x.astype(np.float64) @ w + b
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def check_stats(stats: dict, batch_size: int, min_runs: int) -> None:
    assert stats["batch_size"] == batch_size and stats["runs"] >= min_runs
    assert 0 < stats["min_ms"] <= stats["p50_ms"] <= stats["p90_ms"] <= stats["p99_ms"] \
        <= stats["max_ms"]
    assert stats["throughput"] == pytest.approx(batch_size / (stats["mean_ms"] / 1e3))


def test_cpu_record(tiny_model: TinyModel, inputs: np.ndarray) -> None:
    path, _, _ = tiny_model
    record = measure_session(path, "cpu", batch_size=32, x=inputs, threads=1,
                             graph_optimization="extended", **FAST)
    assert record["status"] == "ok" and record["reason"] is None
    assert record["provider"] == "CPUExecutionProvider"
    assert record["requested_provider"] == "cpu"
    assert record["intra_op_threads"] == 1 and record["threads"] == 1
    assert record["graph_optimization"] == "extended"
    assert record["graph_optimization_level"] == "ORT_ENABLE_EXTENDED"
    assert record["batch_size"] == 32 and record["input_shape"] == [32, 16]
    assert list(record["latency"]) == [SESSION_RUN]
    check_stats(record["latency"][SESSION_RUN], 32, FAST["min_runs"])


def test_cuda_request_without_cuda_is_unavailable_not_cpu(tiny_model: TinyModel,
                                                          inputs: np.ndarray) -> None:
    path, _, _ = tiny_model
    try:
        create_session(path, "cuda")
    except ProviderUnavailable:
        pass
    else:
        pytest.skip("the CUDA execution provider works here")
    record = measure_session(path, "cuda", batch_size=8, x=inputs, **FAST)
    assert record["status"] == "unavailable"
    assert "CUDAExecutionProvider" in record["reason"]
    assert record["provider"] is None and record["providers"] == []
    assert record["latency"] == {}


@pytest.mark.gpu
def test_cuda_io_binding_and_session_run(tiny_model: TinyModel, inputs: np.ndarray) -> None:
    path, w, b = tiny_model
    record = measure_session(path, "cuda", batch_size=32, x=inputs, **FAST)
    assert record["status"] == "ok", record["reason"]
    assert record["provider"] == "CUDAExecutionProvider"
    assert list(record["latency"]) == [IO_BINDING, SESSION_RUN]
    for stats in record["latency"].values():
        check_stats(stats, 32, FAST["min_runs"])
    # The device-resident run computes the same thing as the plain one.
    session = create_session(path, "cuda")
    runner = IoBindingRunner(session, inputs, "cuda")
    runner()
    np.testing.assert_allclose(runner.outputs()[0], reference(inputs, w, b), atol=1e-5)


def test_io_binding_on_cpu_matches_session_run(tiny_model: TinyModel,
                                               inputs: np.ndarray) -> None:
    path, w, b = tiny_model
    session = create_session(path, "cpu", threads=1)
    runner = IoBindingRunner(session, inputs, "cpu")
    runner()
    (out,) = runner.outputs()
    plain = session.run(None, {"input": inputs})[0]
    np.testing.assert_array_equal(out, plain)
    np.testing.assert_allclose(out, reference(inputs, w, b), atol=1e-5)
    stats = ort_latency(session, inputs, provider="cpu", io_binding=True, **FAST)
    check_stats(stats.as_dict(), len(inputs), FAST["min_runs"])


def test_harness_vs_bare_loop_ratio_is_finite(tiny_model: TinyModel,
                                              inputs: np.ndarray) -> None:
    path, _, _ = tiny_model
    session = create_session(path, "cpu", threads=1)
    feed = {"input": inputs[:16]}
    assert len(bare_session_loop(session, feed, runs=5)) == 5
    result = harness_vs_bare(session, inputs[:16], runs=50, warmup=5, harness_first=False)
    assert result["bare_p50_ms"] > 0 and result["harness_p50_ms"] > 0
    assert result["harness_first"] is False and "noisy" in result["machine_load"]
    assert math.isfinite(result["p50_ratio"]) and result["p50_ratio"] > 0
    assert math.isfinite(result["mean_ratio"]) and result["mean_ratio"] > 0


def test_bad_arguments_fail_before_opening_a_session(tiny_model: TinyModel,
                                                     inputs: np.ndarray) -> None:
    path, _, _ = tiny_model
    with pytest.raises(ValueError, match="unknown provider"):
        measure_session(path, "tpu", batch_size=8, x=inputs, **FAST)
    with pytest.raises(ValueError, match="fewer than batch_size"):
        measure_session(path, "cpu", batch_size=65, x=inputs, **FAST)
    with pytest.raises(ValueError, match="min_runs"):
        measure_session(path, "cpu", batch_size=8, x=inputs, warmup=0, min_runs=0)
    with pytest.raises(ValueError, match="runs must be >= 1"):
        bare_session_loop(create_session(path), {"input": inputs}, runs=0)


def test_modes_per_provider() -> None:
    assert modes("cpu") == (SESSION_RUN,)
    assert modes("cuda") == (IO_BINDING, SESSION_RUN)
