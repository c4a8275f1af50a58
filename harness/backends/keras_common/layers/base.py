"""What a Keras builder entry is: how to make the Keras layer of a spec layer, (where its
variables' names are not the canonical ones) which variable holds each canonical array, and
the inverse: which Keras classes it reads back into a spec layer (`harness import`).

Everything here is plain Keras, the same on every Keras backend. The canonical layouts are
Keras' own, so a variable is never converted, only found.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras

from harness.backends.keras_common.layers.activations import keras_activation
from harness.spec.shapes import LayerInfo

# (the spec layer's info, the arguments every Keras layer gets: name and dtype) -> the layer
Maker = Callable[[LayerInfo, dict[str, Any]], keras.layers.Layer]
# (a Keras layer, notes) -> the spec layer's mapping (no name, no inputs), as a spec's YAML
# holds it; NotInSpec for an argument the spec cannot say; what it drops goes to notes
Reader = Callable[[keras.layers.Layer, list[str]], dict[str, Any]]


def by_name(keras_layer: keras.layers.Layer) -> dict[str, Any]:
    """Canonical name -> variable, where the canonical names are Keras' variable names."""
    return {variable.name: variable for variable in keras_layer.weights}


@dataclass(frozen=True)
class KerasEntry:
    make: Maker
    variables: Callable[[keras.layers.Layer], dict[str, Any]] = by_name
    # the inverse (harness.backends.keras_common.reading): the Keras classes this entry's
    # spec layer is, and how one of them reads back; a class is matched exactly (a subclass
    # may compute something else)
    keras_classes: tuple[type, ...] = ()
    read: Reader | None = None


def weighted_kwargs(layer: Any) -> dict[str, Any]:
    """Variables start at zero; the builder then names the spec's initializers on the layer
    (see `harness.backends.keras_common.builder.name_spec_initializers`)."""
    return {"activation": keras_activation(layer.activation), "use_bias": layer.use_bias,
            "kernel_initializer": "zeros", "bias_initializer": "zeros"}
