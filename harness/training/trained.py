"""A trained model as one object: what a matrix job's training hands its export, parity check
and latency timing, so none of them reads the run folder back, loads the data again or
rebuilds the model on the device it trained on."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.backends import Backend, get_backend
from harness.data import Arrays
from harness.spec import ModelSpec, Weights
from harness.training.config import TrainConfig, native_outputs_match


def build_with_weights(backend: Backend, spec: ModelSpec, weights: Weights) -> Any:
    """The backend's model of `spec`, holding `weights` (canonical layout)."""
    model = backend.build(spec)
    backend.set_weights(model, weights)
    return model


@dataclass
class TrainedModel:
    """The trained model in its framework, eager (a compiled training's weights copied back
    into the eager model it was compiled from), with everything its training computed."""

    spec: ModelSpec
    config: TrainConfig
    seed: int
    epochs: int
    backend: Backend  # on config.device, with the training's threads, TF32 and layout
    model: Any
    weights: Weights  # the final weights, canonical layout (final_weights.npz)
    arrays: Arrays  # the data as the training loaded it (its limits)
    probabilities: np.ndarray  # on arrays.x_test, as test_outputs.npz records them
    out_dir: Path  # the run folder its files are in
    _models: dict[str, tuple[Backend, Any]] = field(default_factory=dict, repr=False)

    def on_device(self, device: str) -> tuple[Backend, Any]:
        """(backend, model) on `device`: the trained one on its own device, elsewhere one built
        there from the trained weights (once), with the training's threads, TF32 and layout."""
        if device == self.config.device:
            return self.backend, self.model
        if device not in self._models:
            backend = get_backend(self.config.backend, device=device,
                                  threads=self.config.threads, tf32=self.config.tf32,
                                  layout=self.config.layout)
            self._models[device] = (backend, build_with_weights(backend, self.spec,
                                                                self.weights))
        return self._models[device]

    @property
    def probabilities_as_on_cpu(self) -> bool:
        """Whether the recorded probabilities are what this model computes eager on the CPU
        without TF32: the native side of the export's parity check without another pass."""
        return native_outputs_match(self.config.device, self.config.tf32, self.config.compile)

