"""The trained model's pass over the test set: loss, accuracy and class probabilities at once.

PyTorch's evaluation yields the probabilities in its own pass. Keras' `evaluate` gives none, so
a Keras model is predicted once and its loss and accuracy computed from the probabilities: one
pass instead of `evaluate` and then `predict` again.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.backends import Backend
from harness.backends.base import Evaluation

# The probability a label may have at least when its log is taken: the smallest normal
# float32, so only a probability that underflowed is clipped (Keras on TensorFlow computes the
# loss from the softmax's logits, which never underflow).
_SMALLEST = float(np.finfo(np.float32).tiny)


def scores(probabilities: np.ndarray, labels: np.ndarray) -> Evaluation:
    """Mean categorical cross-entropy (in float64) and accuracy of `probabilities` (one row
    per sample) on integer `labels`; the Evaluation holds the probabilities too."""
    count = max(len(labels), 1)
    true = probabilities[np.arange(len(labels)), labels].astype(np.float64)
    loss = float(-np.log(np.maximum(true, _SMALLEST)).sum() / count)
    accuracy = float((probabilities.argmax(axis=1) == labels).sum() / count)
    return Evaluation(loss, accuracy, probabilities)


class TestPass:
    """The test set of one training, in the form its backend evaluates: the framework's
    tensors for an `evaluate` that yields probabilities, the arrays for a Keras `predict`."""

    __test__ = False  # not a pytest class

    def __init__(self, backend: Backend, x: np.ndarray, y: np.ndarray, batch_size: int) -> None:
        self.backend, self.x, self.y, self.batch_size = backend, x, y, batch_size
        self._native = (backend.to_native(x, y) if backend.evaluate_gives_probabilities
                        else None)

    def __call__(self, model: Any) -> Evaluation:
        """`model` (in inference mode) on the test set, with its probabilities."""
        if self._native is None:
            return scores(self.backend.predict(model, self.x, self.batch_size), self.y)
        return self.backend.evaluate(model, self._native, self.batch_size)
