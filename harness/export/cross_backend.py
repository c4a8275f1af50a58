"""Cross-framework parity: one set of weights, four implementations, the same outputs.

For each weights source (the spec's initial weights, or each given training run, whichever
framework trained it) the weights are loaded into every backend's native model and exported
to ONNX; all outputs on the test set are compared with the training framework's native output.
The library behind `harness parity`.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.backends import backend_names, get_backend
from harness.backends.onnx_io import DEFAULT_OPSET
from harness.data import load_arrays
from harness.export.driver import PARITY_TOLERANCE, WeightsSource, convert_to_onnx, weights_source
from harness.training import build_with_weights


@dataclass(frozen=True)
class ParityRow:
    weights: str  # "initial" or "<backend>-trained (<run dir>)"
    implementation: str  # e.g. "keras native", "torch onnx"
    accuracy: float
    max_abs_diff: float  # vs the reference implementation's probabilities
    reference: str

    @property
    def passed(self) -> bool:
        return self.max_abs_diff <= PARITY_TOLERANCE


def _backend_outputs(name: str, source: WeightsSource, x: np.ndarray, work_dir: Path,
                     opset: int, threads: int | None) -> dict[str, np.ndarray]:
    """One backend's native and ONNX Runtime outputs (module level: it may run in a worker)."""
    from harness.ort import create_session, run_batched

    backend = get_backend(name, threads=threads)
    model = build_with_weights(backend, source.spec, source.weights)
    native = backend.predict(model, x)
    path = work_dir / f"{source.spec.name}.{name}.onnx"
    # work_dir is deleted at the end: a failure's log goes where the user can still read it
    log = Path(tempfile.gettempdir()) / f"harness-parity-{path.name}.log"
    convert_to_onnx(backend, model, source.spec, path, opset, log=log)
    return {f"{name} native": native,
            f"{name} onnx": run_batched(create_session(path, "cpu", threads=threads), x)}


def _outputs(source: WeightsSource, x: np.ndarray, work_dir: Path, opset: int,
             threads: int | None, backends: list[str]) -> dict[str, np.ndarray]:
    """Each backend's outputs; a Keras backend this process cannot hold (one Keras backend
    per process) runs in a worker process of its own."""
    from harness.backends.isolation import BackendProcess, conflict

    outputs = {}
    for name in backends:
        if conflict(name) is None:
            outputs.update(_backend_outputs(name, source, x, work_dir, opset, threads))
            continue
        with BackendProcess() as worker:
            outputs.update(worker.call(__name__, _backend_outputs.__name__, name, source, x,
                                       work_dir, opset, threads))
    return outputs


def cross_parity(spec_ref: str | Path | None, run_dirs: list[Path] | None = None,
                 data_dir: Path | None = None, limit_test: int | None = None,
                 opset: int = DEFAULT_OPSET, threads: int | None = None,
                 backends: list[str] | None = None) -> list[ParityRow]:
    """Rows for every weights source x implementation (native and ONNX of each of `backends`,
    default every backend); the reference is the training backend's native output, else the
    first backend's."""
    backends = list(backends or backend_names())
    sources = ([weights_source(spec_ref, run) for run in run_dirs] if run_dirs
               else [weights_source(spec_ref, None)])
    rows = []
    for source in sources:
        trained = source.description.get("trained_backend")
        label = f"{trained}-trained ({source.description['run_dir']})" if trained else "initial"
        reference = f"{trained if trained in backends else backends[0]} native"
        arrays = load_arrays(source.spec.input, data_dir=data_dir, limit=1,
                             limit_test=limit_test)
        with tempfile.TemporaryDirectory(prefix="harness-parity-") as work_dir:
            outputs = _outputs(source, arrays.x_test, Path(work_dir), opset, threads, backends)
        for implementation, probs in outputs.items():
            rows.append(ParityRow(
                weights=label, implementation=implementation,
                accuracy=float((probs.argmax(1) == arrays.y_test).mean()),
                max_abs_diff=float(np.abs(probs - outputs[reference]).max()),
                reference=reference))
    return rows
