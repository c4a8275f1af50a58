"""Accuracy next to every latency: a variant's accuracy and loss on the test set, its agreement
with the float32 model, and the accuracy gate (MLPerf-style: a variant must keep at least a
fraction, 99% by default, of the float32 model's accuracy)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

PROBABILITY_FLOOR = 1e-7  # Keras' epsilon: log(0) of a saturated softmax is not a loss


def scores(probabilities: np.ndarray, labels: np.ndarray,
           reference: np.ndarray | None) -> dict[str, Any]:
    """Accuracy and categorical cross-entropy of `probabilities` (n, 10) against `labels`, and
    their argmax agreement and largest absolute difference with the float32 `reference`
    (None without one)."""
    probabilities = np.asarray(probabilities, dtype=np.float32)
    predicted = probabilities.argmax(axis=1)
    picked = probabilities[np.arange(len(labels)), labels]
    return {
        "status": "ok", "reason": None, "n": int(len(labels)),
        "accuracy": float((predicted == labels).mean()),
        "loss": float(-np.log(np.maximum(picked, PROBABILITY_FLOOR)).mean()),
        "argmax_agreement": None if reference is None
        else float((predicted == reference.argmax(axis=1)).mean()),
        "max_abs_diff": None if reference is None
        else float(np.abs(probabilities - reference).max()),
    }


def not_measured(status: str, reason: str) -> dict[str, Any]:
    """The accuracy record of a variant that could not run on a provider."""
    return {"status": status, "reason": reason, "n": None, "accuracy": None, "loss": None,
            "argmax_agreement": None, "max_abs_diff": None}


def gate(accuracy: dict[str, Any], reference_accuracy: float, threshold: float
         ) -> dict[str, Any]:
    """`passed`: the variant kept at least `threshold` of the float32 accuracy; None when it
    was not measured."""
    required = threshold * reference_accuracy
    measured = accuracy.get("accuracy")
    return {"threshold": threshold, "reference_accuracy": reference_accuracy,
            "required_accuracy": required,
            "passed": None if measured is None else bool(measured >= required)}


def ort_probabilities(path: Path, provider: str, x: np.ndarray, threads: int | None,
                      graph_optimization: str) -> np.ndarray:
    """The model's probabilities for `x` in an ONNX Runtime session on `provider`
    (ProviderUnavailable when the provider cannot run)."""
    from harness.ort import create_session, run_batched

    session = create_session(path, provider, threads, graph_optimization)
    return run_batched(session, x)
