"""A Keras model's training state as one .npz file, for resuming training in a new process.

The state is `model.variables` (weights, BatchNorm statistics and the dropout layers' seed
generator states), the optimizer's variables (step count, learning rate, moments), stored in
their order, and the framework's own RNG states where Keras draws from them. A model built
from the same spec has the same variables in the same order; their names may differ between
processes (Keras numbers layers per process), so order and shape are what must match.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

_MODEL, _OPTIMIZER = "model", "optimizer"


def _groups(model: keras.Model) -> dict[str, Sequence[Any]]:
    return {_MODEL: model.variables, _OPTIMIZER: model.optimizer.variables}


def save_training_state(model: keras.Model, path: Path, rng: dict[str, np.ndarray]) -> None:
    """`rng`: the framework's own RNG states where Keras draws from them (KerasBackendBase)."""
    arrays = {f"rng/{name}": value for name, value in rng.items()}
    arrays |= {f"{group}/{index:04d}": np.asarray(keras.ops.convert_to_numpy(variable.value))
              for group, variables in _groups(model).items()
              for index, variable in enumerate(variables)}
    with open(path, "wb") as handle:  # a handle: np.savez would append ".npz" to a name
        np.savez(handle, **arrays)


def _read(path: Path) -> dict[str, np.ndarray]:
    """Every array of the file; ValueError when it cannot be read (a cut archive: BadZipFile,
    an empty file: EOFError, anything else: ValueError)."""
    try:
        with np.load(path) as stored:
            return {name: stored[name] for name in stored.files}
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path.name}: cannot be read") from exc


def load_training_state(model: keras.Model, path: Path) -> dict[str, np.ndarray]:
    """Into a model built and compiled from the same spec; its optimizer is built here if no
    step ran yet (as `fit` builds it before its first step). Returns the saved RNG states.
    ValueError, no variable changed, when the file cannot be read or does not fit the model."""
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    saved = _read(path)
    assignments = []  # all checked before any is assigned: a misfit leaves the model as built
    for group, variables in _groups(model).items():
        names = sorted(name for name in saved if name.startswith(f"{group}/"))
        if len(names) != len(variables):
            raise ValueError(f"{path.name}: {len(names)} {group} variables saved, the model "
                             f"has {len(variables)}")
        for name, variable in zip(names, variables, strict=True):
            value = saved[name]
            if tuple(value.shape) != tuple(variable.shape):
                raise ValueError(f"{path.name}: {group} variable {variable.path} has shape "
                                 f"{tuple(variable.shape)}, saved {tuple(value.shape)}")
            assignments.append((variable, value))
    for variable, value in assignments:
        variable.assign(value.astype(variable.dtype))
    return {name.removeprefix("rng/"): value for name, value in saved.items()
            if name.startswith("rng/")}
