"""Initial weights generated once, in numpy, from a spec's initializers and a seed.

Both backends load these same arrays, so training starts from identical weights. Layouts are
channels-last (Keras): dense kernel (in, out); conv kernel (kh, kw, c_in, c_out); batchnorm
gamma, beta, moving_mean, moving_variance. Keys are `"<layer index>.<name>"`.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np

from harness.errors import UsageError
from harness.spec import layers as L
from harness.spec.schema import ModelSpec
from harness.spec.shapes import infer

Weights = dict[str, np.ndarray]

# Keras' truncated variance-scaling initializers divide the stddev by this constant, the stddev
# of a standard normal truncated to [-2, 2], so the drawn values have the intended variance.
_TRUNCATION_STDDEV = 0.87962566103423978


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def _truncated_normal(rng: np.random.Generator, shape: tuple[int, ...], mean: float,
                      stddev: float) -> np.ndarray:
    values = rng.standard_normal(shape)
    outside = np.abs(values) > 2.0
    while outside.any():  # re-draw outside 2 stddev, as tf.random.truncated_normal does
        values[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(values) > 2.0
    return mean + stddev * values


def _orthogonal(rng: np.random.Generator, shape: tuple[int, ...], gain: float) -> np.ndarray:
    """Keras' Orthogonal: QR of a normal (max, min) matrix of the flattened shape, Q's columns
    sign-corrected by R's diagonal (so Q is uniform over the orthogonal matrices), transposed
    when there are fewer rows than columns (orthonormal rows then)."""
    if len(shape) < 2:  # the spec refuses it at load; Keras raises the same
        raise ValueError(f"orthogonal needs an array of 2 or more dimensions; got {shape}")
    rows, cols = math.prod(shape[:-1]), shape[-1]
    q, r = np.linalg.qr(rng.standard_normal((max(rows, cols), min(rows, cols))))
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return gain * q.reshape(shape)


def sample(init: L.Initializer, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Draw one array for `init` with Keras' formulas (fan_in/fan_out as Keras counts them)."""
    fan_in, fan_out = _fans(shape) if len(shape) >= 2 else (shape[0], shape[0])
    if isinstance(init, L.GlorotUniform):
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        values = rng.uniform(-limit, limit, shape)
    elif isinstance(init, L.HeUniform):
        limit = math.sqrt(6.0 / fan_in)
        values = rng.uniform(-limit, limit, shape)
    elif isinstance(init, L.LecunUniform):
        limit = math.sqrt(3.0 / fan_in)
        values = rng.uniform(-limit, limit, shape)
    elif isinstance(init, (L.GlorotNormal, L.HeNormal, L.LecunNormal)):
        variance = {L.GlorotNormal: 2.0 / (fan_in + fan_out), L.HeNormal: 2.0 / fan_in,
                    L.LecunNormal: 1.0 / fan_in}[type(init)]
        values = _truncated_normal(rng, shape, 0.0, math.sqrt(variance) / _TRUNCATION_STDDEV)
    elif isinstance(init, L.Normal):
        values = rng.normal(init.mean, init.stddev, shape)
    elif isinstance(init, L.TruncatedNormal):
        values = _truncated_normal(rng, shape, init.mean, init.stddev)
    elif isinstance(init, L.Uniform):
        values = rng.uniform(init.minval, init.maxval, shape)
    elif isinstance(init, L.Zeros):
        values = np.zeros(shape)
    elif isinstance(init, L.Ones):
        values = np.ones(shape)
    elif isinstance(init, L.Constant):
        values = np.full(shape, init.value)
    elif isinstance(init, L.Orthogonal):
        values = _orthogonal(rng, shape, init.gain)
    elif isinstance(init, L.UnitForgetBias):  # Keras draws (units,), ones, (2 * units,)
        units = shape[0] // 4
        values = np.concatenate([sample(init.inner, (units,), rng), np.ones(units),
                                 sample(init.inner, (2 * units,), rng)])
    else:  # pragma: no cover - the schema's union is closed
        raise TypeError(f"unhandled initializer {init!r}")
    return values.astype(np.float32)


def initial_weights(spec: ModelSpec, seed: int | None = None) -> Weights:
    """All parameters and BN statistics of `spec`: its `initial_weights` file's arrays where
    it names one (keys and shapes checked against the spec), else drawn from its initializers.

    `seed` defaults to the spec's `train.seed` (a file's arrays do not depend on it). The draw
    order is fixed (layer by layer, each layer's arrays in the order its `weights` lists them:
    kernel then bias), so the same spec and seed always give the same arrays.
    """
    if spec.initial_weights is not None:
        return weights_file(spec, spec.initial_weights.resolved)
    rng = np.random.default_rng(spec.train.seed if seed is None else seed)
    return {f"{info.index}.{weight.name}": sample(weight.initializer, weight.shape, rng)
            for info in infer(spec).layers for weight in info.weights}


def weights_file(spec: ModelSpec, path: Path) -> Weights:
    """The arrays of an .npz the spec names, as float32; UsageError (one line naming the file,
    the key and the shapes) for a missing, extra or misshapen array."""
    try:
        found = load_weights(str(path))
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise UsageError(f"{path}: not an .npz of weights ({exc})") from None
    wanted = {f"{info.index}.{weight.name}": weight.shape
              for info in infer(spec).layers for weight in info.weights}
    for key, shape in wanted.items():
        if key not in found:
            raise UsageError(f"{path}: no array {key!r} (shape {shape}); the spec's layers "
                             f"need {sorted(wanted)}")
        if found[key].shape != shape:
            raise UsageError(f"{path}: array {key!r} has shape {found[key].shape}, the spec's "
                             f"layer needs {shape}")
    extra = sorted(set(found) - set(wanted))
    if extra:
        raise UsageError(f"{path}: arrays {extra} belong to no layer of the spec (it needs "
                         f"{sorted(wanted)})")
    return {key: found[key].astype(np.float32) for key in wanted}


def save_weights(weights: Weights, path: str) -> None:
    np.savez(path, **weights)


def load_weights(path: str) -> Weights:
    with np.load(path) as archive:
        return {key: archive[key] for key in archive.files}
