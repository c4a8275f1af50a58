"""The proof of an import: the written spec, built in every installed backend from the
imported weights, computes what the original file computes.

Sample inputs are test images of the spec's dataset, prepared as training prepares them
(channels-last, divided by the spec's scale); the original's outputs come from its reader's
`predict`. A Keras backend this process cannot hold (one Keras backend per process) runs in a
worker process of its own (harness.backends.isolation), as `harness parity` does.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

from harness.backends import backend_names, get_backend, not_installed
from harness.data import load_arrays
from harness.spec import ModelSpec
from harness.spec.initializers import Weights
from harness.training import build_with_weights

# max |probability difference| an implementation may show against the original: the bound of
# the test suite's cross-framework checks (tests/vocabulary_specs.py TOLERANCE), tighter than
# harness export's native-vs-ONNX Runtime PARITY_TOLERANCE (1e-4)
IMPORT_TOLERANCE = 1e-5
DEFAULT_SAMPLES = 256


@dataclass(frozen=True)
class ProofRow:
    backend: str
    max_abs_diff: float | None  # None: not run
    argmax_agreement: float | None  # the fraction of samples whose predicted class agrees
    skipped: str | None = None  # why it did not run (not installed)

    @property
    def passed(self) -> bool:
        return self.skipped is not None or (self.max_abs_diff is not None
                                            and self.max_abs_diff <= IMPORT_TOLERANCE)

    @property
    def verdict(self) -> str:
        if self.skipped is not None:
            return "skipped"
        return "same" if self.passed else "DIFFERS"


def backend_outputs(name: str, spec: ModelSpec, weights: Weights, x: np.ndarray) -> np.ndarray:
    """`spec` built in backend `name` with `weights`, on `x` (module level: it may run in a
    worker process)."""
    with warnings.catch_warnings():  # a thread count the reader's Keras already fixed
        warnings.simplefilter("ignore", RuntimeWarning)
        backend = get_backend(name)
    return backend.predict(build_with_weights(backend, spec, weights), x)


def sample_inputs(spec: ModelSpec, samples: int, data_dir: Path | None = None,
                  download: bool | None = None) -> np.ndarray:
    """The first `samples` test images of the spec's dataset, prepared as training does."""
    return load_arrays(spec.input, data_dir, limit=1, limit_test=samples,
                       download=download).x_test


def _outputs(name: str, spec: ModelSpec, weights: Weights, x: np.ndarray) -> np.ndarray:
    from harness.backends.isolation import BackendProcess, conflict

    if conflict(name) is None:
        return backend_outputs(name, spec, weights, x)
    with BackendProcess() as worker:
        return worker.call(__name__, backend_outputs.__name__, name, spec, weights, x)


def prove(spec: ModelSpec, weights: Weights, reader: ModuleType, model_path: Path,
          x: np.ndarray, backends: list[str] | None = None) -> list[ProofRow]:
    """One row per backend (default: every backend; those not installed are skipped)."""
    expected = np.asarray(reader.predict(model_path, x), dtype=np.float64)
    rows = []
    for name in backends or backend_names():
        missing = not_installed(name)
        if missing:
            rows.append(ProofRow(name, None, None, skipped="not installed"))
            continue
        got = np.asarray(_outputs(name, spec, weights, x), dtype=np.float64)
        if got.shape != expected.shape:
            rows.append(ProofRow(name, float("inf"), 0.0))
            continue
        agreement = float(np.mean(got.argmax(axis=-1) == expected.argmax(axis=-1)))
        rows.append(ProofRow(name, float(np.abs(got - expected).max()), agreement))
    return rows
