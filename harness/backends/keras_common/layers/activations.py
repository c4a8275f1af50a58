"""The spec's activation words as Keras activations, the same on every Keras backend.

Keras knows most words by name. `gelu_tanh` has no Keras name (Keras' "gelu" is the exact,
erf one), so it is a function of its own, registered so that a saved model names it
(`harness>gelu_tanh`) and loads back wherever this module has been imported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras


@keras.saving.register_keras_serializable(package="harness")
def gelu_tanh(x: Any) -> Any:
    """GELU's tanh approximation: 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))."""
    return keras.activations.gelu(x, approximate=True)


# spec word -> what Keras is given, where that is not the word itself
_KERAS = {"gelu_tanh": gelu_tanh, "swish": "silu"}  # silu: Keras' name of swish


def keras_activation(name: str) -> str | Callable[[Any], Any]:
    """What to pass as a Keras layer's `activation` for the spec's activation `name`."""
    return _KERAS.get(name, name)
