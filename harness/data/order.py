"""Which samples, in which order: the validation split Keras' `validation_split` makes, and
every epoch's order and batches, the same in every backend."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import replace

import numpy as np

from harness.data.datasets import Arrays
from harness.errors import UsageError


def split_index(n: int, fraction: float) -> int:
    """Where Keras' `fit(validation_split=fraction)` cuts n samples: the first
    floor(n * (1 - fraction)) train, the rest validate (keras/src/trainers/data_adapters/
    array_slicing.py, train_validation_split). UsageError when a side would be empty."""
    at = int(math.floor(n * (1.0 - fraction)))
    if at in (0, n):
        raise UsageError(f"train.validation.split: {fraction} of {n} training samples leaves "
                         "no sample to train or to validate on; use more samples or another "
                         "split")
    return at


def hold_out(arrays: Arrays, fraction: float) -> Arrays:
    """The last `fraction` of the training arrays (as given, before any shuffling) held out as
    the validation set, as Keras' validation_split does."""
    at = split_index(arrays.n_train, fraction)
    return replace(arrays, x_train=arrays.x_train[:at], y_train=arrays.y_train[:at],
                   x_val=arrays.x_train[at:], y_val=arrays.y_train[at:])


def epoch_order(n: int, epoch: int, seed: int, shuffle: bool = True) -> np.ndarray:
    """Training sample order for `epoch`, the same in every backend (int64 indices)."""
    if n < 0 or epoch < 0 or seed < 0:
        raise ValueError(f"n, epoch and seed must be >= 0, got {n}, {epoch}, {seed}")
    if not shuffle:
        return np.arange(n, dtype=np.int64)
    return np.random.default_rng([seed, epoch]).permutation(n).astype(np.int64, copy=False)


def num_batches(n: int, batch_size: int) -> int:
    """Batches per epoch when the last one may be partial."""
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    return -(-n // batch_size)


def batch_slices(order: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """Consecutive index batches of `order`; the last one may be smaller."""
    for i in range(num_batches(len(order), batch_size)):
        yield order[i * batch_size: (i + 1) * batch_size]
