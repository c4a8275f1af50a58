"""A matrix job is one in-memory pass: train -> export -> parity -> latency hand each other the
trained model, so within one job the spec is parsed once, the data loaded once, the model built
once, the test set run through the framework once, the ONNX file hashed once and the training
record (metrics.json) written once. A real small job of mlp2, counted; the Keras backend runs
in the process the `backend_call` fixture gives it."""

from __future__ import annotations

import hashlib
import importlib
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

# the modules a job's steps use, imported before their functions are wrapped: a module
# imported later would bind the unwrapped function
_STEP_MODULES = ("harness.run.job_process", "harness.training", "harness.training.loop",
                 "harness.training.evaluation", "harness.export.driver", "harness.latency.bench",
                 "harness.latency.native", "harness.latency.variants.runner",
                 "harness.latency.variants.replay", "harness.data", "harness.data.datasets",
                 "harness.spec", "harness.spec.loader", "harness.backends.onnx_io",
                 "harness.records.io")


def _harness_modules() -> list[ModuleType]:
    return [module for name, module in list(sys.modules.items())
            if name == "harness" or name.startswith("harness.")]


def _count_everywhere(mp: pytest.MonkeyPatch, counts: Counter[str], name: str,
                      original: Callable[..., Any],
                      when: Callable[..., bool] | None = None) -> None:
    """Count the calls of `original` (where `when` says so) under every name a harness module
    holds it by."""
    def counted(*args: Any, **kwargs: Any) -> Any:
        if when is None or when(*args, **kwargs):
            counts[name] += 1
        return original(*args, **kwargs)

    for module in _harness_modules():
        for attr, value in list(vars(module).items()):
            if value is original:
                mp.setattr(module, attr, counted)


def _count_method(mp: pytest.MonkeyPatch, counts: Counter[str], name: str, cls: type,
                  method: str, when: Callable[..., bool] | None = None) -> None:
    original = getattr(cls, method)

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        if when is None or when(*args, **kwargs):
            counts[name] += 1
        return original(self, *args, **kwargs)

    mp.setattr(cls, method, counted)


def _instrument(mp: pytest.MonkeyPatch, counts: Counter[str], backend: str,
                n_test: int) -> None:
    from harness.backends import REGISTRY
    from harness.data import datasets
    from harness.records import folders
    from harness.records.io import write_json_atomic
    from harness.spec import loader

    for module in _STEP_MODULES:
        importlib.import_module(module)
    entry = REGISTRY[backend]
    cls = getattr(importlib.import_module(entry.module), entry.cls)
    _count_everywhere(mp, counts, "spec parse", loader.parse_spec)
    _count_everywhere(mp, counts, "data load", datasets.load_arrays)
    _count_everywhere(mp, counts, "data files read", datasets.load_raw)
    _count_everywhere(mp, counts, "metrics.json written", write_json_atomic,
                      lambda path, *_, **__: Path(path).name == folders.METRICS_FILE)
    _count_method(mp, counts, "model build", cls, "build")

    def test_set(model: Any, data: Any, *_: Any, **__: Any) -> bool:
        rows = len(data.labels) if hasattr(data, "labels") else len(data)  # KerasData
        return rows == n_test  # not the replay images (test_data_set_0)

    _count_method(mp, counts, "test-set pass", cls, "evaluate", test_set)
    _count_method(mp, counts, "test-set pass", cls, "predict", test_set)

    def sha256(*args: Any, **kwargs: Any) -> Any:
        counts["onnx hash"] += 1
        return hashlib.sha256(*args, **kwargs)

    # the ONNX file's hash: the export's checks (onnx_io) and latency's check of an earlier export
    for module in ("harness.backends.onnx_io", "harness.latency.bench"):
        mp.setattr(f"{module}.hashlib", SimpleNamespace(sha256=sha256))


def counted_job(backend: str, work: str) -> tuple[dict[str, Any], dict[str, int], int]:
    """Run one small job of mlp2 in `backend` into `work` as a job process runs it (its input
    as the executor gives it), counting; (job record, counts, the negative control's count of
    two data loads). Module level: it may run in a worker holding a Keras backend."""
    import harness.data
    from harness.run.job import Placement
    from harness.run.job_process import job_input, run_given
    from harness.run.plan import RunConfig, plan_jobs
    from harness.spec import load_spec
    from harness.spec.loader import dump_spec

    n_test = 200
    (job,) = plan_jobs(RunConfig(
        specs=["mlp2"], backends=[backend], providers=["cpu"], batch_sizes=[1], epochs=1,
        limit=500, limit_test=n_test, threads=1, latency_warmup=0, latency_min_runs=2,
        latency_min_seconds=0.0)).jobs
    given = job_input(job, dump_spec(load_spec("mlp2")), Placement(executor="local"))
    counts: Counter[str] = Counter()
    with pytest.MonkeyPatch.context() as mp:
        _instrument(mp, counts, backend, n_test)
        assert run_given(given, Path(work), time.time()) in (0, 1)
        job_counts = dict(counts)
        spec = load_spec("mlp2")  # negative control: a second load is seen
        counts.clear()
        for _ in range(2):
            harness.data.load_arrays(spec.input, limit=1, limit_test=10)  # as the job calls it
    from harness.records import folders
    from harness.records.io import read_json

    return read_json(Path(work) / folders.JOB_FILE), job_counts, counts["data load"]


@pytest.mark.parametrize("backend", ["torch", "keras"])
def test_a_job_does_each_expensive_thing_once(backend: str, tmp_path: Path,
                                              backend_call: Callable[..., Any]) -> None:
    pytest.importorskip("onnxruntime")
    from harness.records import folders
    from harness.records.io import read_json

    work = tmp_path / "job"
    record, counts, control = backend_call(backend, counted_job, backend, str(work))
    assert (record["status"], record["error"]) == ("ok", None), record["error"]
    assert counts == {"spec parse": 1, "data load": 1, "data files read": 1, "model build": 1,
                      "test-set pass": 1, "onnx hash": 1, "metrics.json written": 1}
    assert control == 2  # the counter sees a second call
    phases = record["phases"]
    for phase in ("imports", "train_setup", "epochs", "evaluation", "export", "parity",
                  "latency", "total"):
        assert phases[phase] >= 0, phase
    assert phases["epochs"] > 0 and phases["parity"] > 0
    # the records as the report and resume read them: the export's summary in the training
    # record, the export's native side the recorded test-set outputs, the hash in latency
    metrics = read_json(work / folders.METRICS_FILE)
    assert [e["path"] for e in metrics["exports"]] == [folders.ONNX_FILE]
    assert metrics["n_test"] == 200 and len(metrics["history"]) == 1
    export = read_json(work / folders.EXPORT_RECORD_FILE)
    assert export["parity"]["native_outputs"] == "training run" and export["passed"]
    assert export["weights"]["run_dir"] == "."
    latency = read_json(work / folders.LATENCY_FILE)
    ort = [r for r in latency["records"] if r["runtime"] == "onnxruntime"]
    assert ort and all(r["model"]["sha256"] == export["onnx"]["sha256"] for r in ort)
    assert {r["status"] for r in latency["records"]} == {"ok"}


def keras_scores() -> tuple[tuple[float, float], tuple[float, float]]:
    """Keras' own `evaluate` and the one test-set pass (predict, loss and accuracy from its
    probabilities) of a briefly trained mlp2: ((loss, accuracy), (loss, accuracy))."""
    from harness.backends import get_backend
    from harness.data import epoch_order, load_arrays
    from harness.spec import load_spec
    from harness.training.evaluation import TestPass

    spec = load_spec("mlp2")
    arrays = load_arrays(spec.input, limit=1000, limit_test=500)
    backend = get_backend("keras", threads=1)
    model = backend.build(spec)
    backend.train_epoch(model, backend.to_native(arrays.x_train, arrays.y_train),
                        epoch_order(1000, 0, 0), 128)
    evaluated = backend.evaluate(model, backend.to_native(arrays.x_test, arrays.y_test), 128)
    one_pass = TestPass(backend, arrays.x_test, arrays.y_test, 128)(model)
    assert one_pass.probabilities is not None and len(one_pass.probabilities) == 500
    return (evaluated.loss, evaluated.accuracy), (one_pass.loss, one_pass.accuracy)


def test_keras_one_test_pass_records_what_evaluate_did(
        backend_call: Callable[..., Any]) -> None:
    """The loss and accuracy Keras' test pass records are those of `evaluate` (which the
    training ran before the pass gave the probabilities too), to float32 rounding."""
    (loss, accuracy), (pass_loss, pass_accuracy) = backend_call("keras", keras_scores)
    eps = 1.2e-7  # float32's: `evaluate` accumulates in float32, the pass in float64
    assert pass_loss == pytest.approx(loss, rel=500 * eps)
    assert pass_accuracy == pytest.approx(accuracy, rel=eps)
