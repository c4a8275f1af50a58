"""What a PyTorch builder entry returns, and the layout conventions every entry follows.

A spec layer becomes a few named torch modules (`parts`, e.g. pad + conv) and the list of its
canonical (Keras-layout) arrays with the torch tensor holding each and the two converters.
Inside the module an image is NCHW (the spec's NHWC input is permuted once, at the start);
every other tensor has the spec's own layout: (N, features) or (N, steps, features).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from torch import nn

from harness.spec.shapes import LayerInfo

Converter = Callable[[np.ndarray], np.ndarray]


def identity(array: np.ndarray) -> np.ndarray:
    return array


@dataclass(frozen=True)
class TorchWeight:
    """Canonical array `name` lives in `part`'s tensor `attribute` (a dotted path)."""

    name: str
    part: str
    attribute: str
    to_torch: Converter = identity
    to_canonical: Converter = identity


@dataclass(frozen=True)
class TorchLayer:
    parts: list[tuple[str, nn.Module]]
    weights: tuple[TorchWeight, ...] = ()


@dataclass(frozen=True)
class BuildContext:
    """What a builder may need beyond its LayerInfo: the permutation of a flat input's
    features (after an image Flatten, torch's (C, H, W) order differs from Keras' (H, W, C)),
    and whether a Flatten must produce Keras' order itself (its output feeds a layer that
    cannot absorb the permutation in its weights)."""

    feature_order: np.ndarray | None = None
    keras_order: bool = False
    extra: dict[str, object] = field(default_factory=dict)


Builder = Callable[[LayerInfo, BuildContext], TorchLayer]


def permuted(perm: np.ndarray | None) -> tuple[Converter, Converter]:
    """Converters for a per-feature vector (BN) reordered from Keras' to torch's order."""
    if perm is None:
        return identity, identity

    def back(a: np.ndarray) -> np.ndarray:
        out = np.empty_like(a)
        out[perm] = a
        return out

    return (lambda a: a[perm]), back
