"""Export a spec's model to ONNX and prove the numbers survive: the library behind
`harness export`, and a matrix job's export step.

The weights come from a training run (`final_weights.npz`, canonical layout, so a model trained
in one framework can be exported through the other), are the spec's initial weights, or are
the trained model a matrix job hands over in memory (`export_trained`).
"""

from __future__ import annotations

import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.backends import Backend, get_backend
from harness.backends.onnx_io import DEFAULT_OPSET, OnnxCheckError, check_file
from harness.data import Arrays, load_arrays
from harness.measure.environment import environment, utc_now
from harness.records.io import RESULT_SCHEMA_VERSION, read_json, relative_path, write_json_atomic
from harness.spec import ModelSpec, SpecError, SpecProblem, initial_weights, spec_hash
from harness.spec.initializers import Weights, load_weights
from harness.spec.loader import parse_spec
from harness.spec.shapes import num_classes
from harness.training import (
    FINAL_WEIGHTS_FILE,
    METRICS_FILE,
    SPEC_FILE,
    TEST_OUTPUTS_FILE,
    TrainedModel,
    as_spec,
    build_with_weights,
    load_test_outputs,
    native_outputs_match,
)

PARITY_TOLERANCE = 1e-4  # max |probability difference| native vs ONNX Runtime on the test set
CHECK_BATCH_SIZES = (1, 7)  # a batch dimension traced at 1 and frozen shows up at 7


class ExportError(RuntimeError):
    """A converter failure or an exported file that fails its checks; says where the log is."""


@dataclass(frozen=True)
class WeightsSource:
    spec: ModelSpec
    weights: Weights
    description: dict[str, Any]  # recorded: initial, or the run it came from


def weights_source(spec_ref: str | Path | ModelSpec | None,
                   run_dir: Path | None) -> WeightsSource:
    """The spec and weights to export: a run's trained weights, else the initial weights."""
    if run_dir is None:
        if spec_ref is None:
            raise ValueError("give a spec, a training run (--from), or both")
        spec = as_spec(spec_ref)
        return WeightsSource(spec, initial_weights(spec),
                             {"source": "initial", "seed": spec.train.seed})
    run_dir = Path(run_dir)
    for name in (METRICS_FILE, SPEC_FILE, FINAL_WEIGHTS_FILE):
        if not (run_dir / name).is_file():
            raise ExportError(f"{run_dir} is not a training run: {name} is missing "
                              "(runs written by `harness train` have it)")
    spec = parse_spec((run_dir / SPEC_FILE).read_text(encoding="utf-8"),
                      source=run_dir / SPEC_FILE)
    if spec_ref is not None:
        asked = as_spec(spec_ref)
        if spec_hash(asked) != spec_hash(spec):
            raise SpecError([SpecProblem("", f"spec {asked.name!r} differs from the spec that "
                                             f"trained {run_dir} ({spec.name!r})")],
                            asked.name if isinstance(spec_ref, ModelSpec) else spec_ref)
    metrics = read_json(run_dir / METRICS_FILE)
    return WeightsSource(spec, load_weights(str(run_dir / FINAL_WEIGHTS_FILE)), {
        "source": "run", "run_dir": str(run_dir), "trained_backend": metrics.get("backend"),
        "seed": metrics.get("seed"), "epochs": metrics.get("epochs"),
    })


def trained_source(trained: TrainedModel) -> WeightsSource:
    """The weights of a model trained in this process, described as `weights_source` describes
    its run folder's."""
    return WeightsSource(trained.spec, trained.weights, {
        "source": "run", "run_dir": str(trained.out_dir),
        "trained_backend": trained.config.backend, "seed": trained.seed,
        "epochs": trained.epochs})


def recorded_source(description: dict[str, Any], record_dir: Path) -> dict[str, Any]:
    """A weights description as a record in `record_dir` holds it: the run folder relative."""
    if "run_dir" not in description:
        return description
    return {**description, "run_dir": relative_path(description["run_dir"], record_dir)}


def convert_to_onnx(backend: Backend, model: Any, spec: ModelSpec, out: Path, opset: int,
                    log: Path | None = None) -> dict[str, Any]:
    """Run the converter and `check_file` on what it wrote; return the check's description.

    A converter that fails, or writes a file the checks reject (tf2onnx copies ops it cannot
    convert into the graph unchanged), raises one ExportError line; the details go to `log`
    (default `<out>.log`) and no file is left at `out`.
    """
    log = log or out.with_name(out.name + ".log")
    what = (f"exporting spec {spec.name!r} with backend {backend.name!r} "
            f"({backend.onnx_converter}, opset {opset})")
    # The converters' own warnings (torch.export's FutureWarning on LeafSpec, ...) are
    # recorded with the file, not printed over the harness's lines.
    with warnings.catch_warnings(record=True) as caught:
        try:
            backend.export_onnx(model, out, opset)
        except Exception as exc:  # noqa: BLE001 - any converter failure becomes one message
            raise _export_failure(f"{what} failed", exc,
                                  ("Full traceback", traceback.format_exc()), out, log) from None
    try:
        info = check_file(out, tuple(spec.input.shape), num_classes(spec))
    except OnnxCheckError as exc:
        raise _export_failure(f"{what} wrote a file that fails the ONNX checks", exc,
                              ("Checker message", str(exc)), out, log) from None
    log.unlink(missing_ok=True)
    return {**info, "converter_warnings": list(dict.fromkeys(
        f"{warning.category.__name__}: {warning.message}" for warning in caught))}


def _export_failure(what: str, exc: Exception, details: tuple[str, str], out: Path, log: Path
                    ) -> ExportError:
    """Keep the (label, text) `details` in `log`, remove the unusable file, say it in one line."""
    label, text = details
    log.write_text(text, encoding="utf-8")
    out.unlink(missing_ok=True)
    message = " ".join(str(exc).removeprefix(f"{out}: ").split()) or type(exc).__name__
    if len(message) > 300:
        message = message[:297] + "..."
    return ExportError(f"{what}: {type(exc).__name__}: {message}. {label}: {log}")


def recorded_native_outputs(run_dir: Path | None, backend: str,
                            y: np.ndarray) -> np.ndarray | None:
    """The trained model's own test-set probabilities, where its run recorded them
    (TEST_OUTPUTS_FILE) on the labels `y`, computed as `backend` rebuilding the model here
    computes them: in that framework, on the CPU, eager, without TF32. None otherwise."""
    if run_dir is None:
        return None
    metrics = read_json(Path(run_dir) / METRICS_FILE)
    requested = metrics.get("requested") or {}
    if metrics.get("backend") != backend or not native_outputs_match(
            metrics.get("device"), requested.get("tf32"), requested.get("compile")):
        return None
    recorded = load_test_outputs(Path(run_dir) / metrics.get("test_outputs_file",
                                                             TEST_OUTPUTS_FILE))
    if recorded is None or not np.array_equal(recorded[1], y):
        return None
    return recorded[0]


def onnx_parity(backend: Backend, model: Any, path: Path, x: np.ndarray, y: np.ndarray,
                threads: int | None = None, native: np.ndarray | None = None) -> dict[str, Any]:
    """Native vs ONNX Runtime (CPU EP) on `x`: max |difference|, both accuracies, batch checks.
    `native`: the model's outputs on `x` as its training run recorded them (else predicted)."""
    from harness.ort import create_session, run_batched, session_info

    session = create_session(path, "cpu", threads=threads)
    native_source = "training run" if native is not None else "predicted"
    if native is None:
        native = backend.predict(model, x)
    onnx_out = run_batched(session, x)
    batch_checks = {}
    for size in CHECK_BATCH_SIZES:
        batch_out = run_batched(session, x[:size], batch_size=size)
        batch_checks[str(size)] = float(np.abs(batch_out - native[:size]).max())
    max_diff = float(np.abs(native - onnx_out).max())
    return {
        "provider": session_info(session)["providers"][0],
        "n": int(len(x)),
        "native_outputs": native_source,
        "max_abs_diff": max_diff,
        "batch_max_abs_diff": batch_checks,
        "native_accuracy": float((native.argmax(1) == y).mean()),
        "onnx_accuracy": float((onnx_out.argmax(1) == y).mean()),
        "argmax_agreement": float((native.argmax(1) == onnx_out.argmax(1)).mean()),
        "tolerance": PARITY_TOLERANCE,
        "passed": bool(max(max_diff, *batch_checks.values()) <= PARITY_TOLERANCE),
    }


def export_model(spec_ref: str | Path | ModelSpec | None, backend_name: str, out: Path,
                 run_dir: Path | None = None, opset: int = DEFAULT_OPSET,
                 data_dir: Path | None = None, limit_test: int | None = None,
                 threads: int | None = None, download: bool | None = None) -> dict[str, Any]:
    """Export, check, compare on the test set; write `<out>.json` (and into the run's
    metrics.json when exported from a run). Raises ExportError when anything fails."""
    source = weights_source(spec_ref, run_dir)
    backend = get_backend(backend_name, threads=threads)
    model = build_with_weights(backend, source.spec, source.weights)
    arrays = load_arrays(source.spec.input, data_dir=data_dir, limit=1, limit_test=limit_test,
                         download=download)
    record = _export_checked(backend, model, source, Path(out), opset, arrays, threads,
                             recorded_native_outputs(run_dir, backend_name, arrays.y_test))
    if run_dir is not None:
        _record_in_run(Path(run_dir), Path(out), record)
    return record


def export_trained(trained: TrainedModel, out: Path, opset: int = DEFAULT_OPSET,
                   threads: int | None = None) -> dict[str, Any]:
    """`export_model` of a model trained in this process: its CPU model (the trained one where
    it trained on the CPU), its test set and, where they are the CPU model's, its recorded
    test-set probabilities as the native side; writes `<out>.json`, not the run's record."""
    backend, model = trained.on_device("cpu")
    native = trained.probabilities if trained.probabilities_as_on_cpu else None
    return _export_checked(backend, model, trained_source(trained), Path(out), opset,
                           trained.arrays, threads, native)


def _export_checked(backend: Backend, model: Any, source: WeightsSource, out: Path, opset: int,
                    arrays: Arrays, threads: int | None,
                    native: np.ndarray | None) -> dict[str, Any]:
    """Convert `model` (holding the source's weights) to `out`, check it, compare it with the
    framework on the test set (`native`: the framework's outputs already known); the record,
    written as `<out>.json`."""
    spec = source.spec
    out.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    onnx_info = convert_to_onnx(backend, model, spec, out, opset)
    converted = time.perf_counter()
    parity = onnx_parity(backend, model, out, arrays.x_test, arrays.y_test, threads,
                         native=native)
    record = {
        "schema_version": RESULT_SCHEMA_VERSION,
        "kind": "export",
        "spec": {"name": spec.name, "hash": spec_hash(spec)},
        "backend": backend.name,
        "converter": backend.onnx_converter,
        "opset_requested": opset,
        "file": out.name,
        "weights": recorded_source(source.description, out.parent),
        "onnx": onnx_info,
        "parity": parity,
        # where an export's time goes (harness.run.job_process splits its phases by it)
        "seconds": {"convert": converted - started, "parity": time.perf_counter() - converted},
        "created_utc": utc_now(),
        "environment": environment(backend.environment()),
        "passed": parity["passed"],
    }
    write_json_atomic(out.with_name(out.name + ".json"), record)
    return record


def export_summary(record: dict[str, Any], out: Path, run_dir: Path) -> dict[str, Any]:
    """An export as the run's training record lists it (metrics.json `exports`)."""
    return {"path": relative_path(out, run_dir), "backend": record["backend"],
            "opset": record["onnx"]["opset"], "passed": record["passed"],
            **{k: record["parity"][k] for k in ("max_abs_diff", "native_accuracy",
                                                "onnx_accuracy", "provider")}}


def _record_in_run(run_dir: Path, out: Path, record: dict[str, Any]) -> None:
    """Add (or replace) this export's summary in the run's metrics.json, atomically."""
    metrics_path = run_dir / METRICS_FILE
    metrics = read_json(metrics_path)
    summary = export_summary(record, out, run_dir)
    exports = [e for e in metrics.get("exports", []) if e.get("path") != summary["path"]]
    metrics["exports"] = [*exports, summary]
    write_json_atomic(metrics_path, metrics)
