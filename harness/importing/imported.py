"""What a model reader gives `harness import`: the model in the spec language, and its weights.

Each reader (one module per file format) has `read(path) -> ImportedModel` and
`predict(path, x) -> np.ndarray`, the original model's outputs for inputs `x` shaped like the
spec's input (channels-last), so the import can be proven against the file itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ImportedModel:
    source: Path  # the model file
    format: str  # "keras" or "onnx"
    input_shape: tuple[int, ...]  # one sample, channels-last, as a spec's `input.shape`
    layers: list[dict[str, Any]]  # spec layer mappings, as a spec's YAML holds them
    # the model's arrays in the canonical layout (harness.spec.initializers), keyed
    # "<layer index>.<name>" like `initial_weights`
    weights: dict[str, np.ndarray]
    # the training settings the file holds (a compiled Keras model's optimizer and loss), as
    # a spec's `train` mapping holds them; None where it holds none (ONNX, an uncompiled model)
    train: dict[str, Any] | None = None
    # what the reader changed or could not carry, one line each (a dropout an ONNX inference
    # graph no longer has, a softmax appended to logits)
    notes: list[str] = field(default_factory=list)


class ModelImportError(ValueError):
    """Base: the file cannot be imported; each line of `problems` is one thing that stops it."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path, self.problems = path, problems
        super().__init__("\n".join(f"{path}: {problem}" for problem in problems))


class UnreadableModel(ModelImportError):
    """Not a model file of its format: truncated, another kind of file, unknown custom objects."""


class UnsupportedModel(ModelImportError):
    """A model file whose layers or operators the spec language cannot express: one line per
    layer (its name, its type, what the spec supports instead)."""
