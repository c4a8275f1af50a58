"""The inverse of the builder entries: a Keras layer read back into a spec layer's mapping.

The spec's fields mean what Keras' arguments of the same names mean, so most entries read
their spec class's fields from the layer's config by name (`spec_fields`); what a spec field
cannot say (channels-first data, a regularizer, a constraint, an argument the spec fixes,
say BatchNormalization's axis) raises NotInSpec with the argument and what the spec supports.
Initializers and activations are read back to the spec's words. Plain Keras, the same on
every Keras backend.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
from pydantic import ValidationError

from harness.backends.keras_common.layers.activations import keras_activation
from harness.spec import layers as L

# (keras layer, its config, the mapping read so far) -> the mapping
Adjust = Callable[[keras.layers.Layer, dict[str, Any], dict[str, Any]], dict[str, Any]]
_ACTIVATION_FIELDS = ("activation", "recurrent_activation", "mlp_activation")


class NotInSpec(ValueError):
    """A Keras layer argument the spec cannot say: the message names it and what the spec has."""


def activation_word(value: Any) -> str:
    """The spec's word for a Keras activation (a name, a serialized function, a function)."""
    try:
        function = keras.activations.get(value)
    except (ValueError, TypeError):
        function = None
    for word in L.ACTIVATIONS:
        if function is not None and keras.activations.get(keras_activation(word)) is function:
            return word
    shown = getattr(function, "__name__", value)
    raise NotInSpec(f"activation {shown!r}: the spec has {', '.join(L.ACTIVATIONS)}")


def _initializer_types() -> dict[type, tuple[str, tuple[str, ...]]]:
    """Keras initializer class -> (the spec's name, the config keys it keeps)."""
    inits = keras.initializers
    return {inits.GlorotUniform: ("glorot_uniform", ()), inits.GlorotNormal: ("glorot_normal", ()),
            inits.HeNormal: ("he_normal", ()), inits.HeUniform: ("he_uniform", ()),
            inits.LecunNormal: ("lecun_normal", ()), inits.LecunUniform: ("lecun_uniform", ()),
            inits.Zeros: ("zeros", ()), inits.Ones: ("ones", ()),
            inits.RandomNormal: ("normal", ("mean", "stddev")),
            inits.TruncatedNormal: ("truncated_normal", ("mean", "stddev")),
            inits.RandomUniform: ("uniform", ("minval", "maxval")),
            inits.Constant: ("constant", ("value",)), inits.Orthogonal: ("orthogonal", ("gain",))}


def initializer_spec(value: Any, field: str, notes: list[str]) -> dict[str, Any] | None:
    """The spec's initializer for a Keras one; None (the spec's default, with a note) for one
    the spec has no word for: it decides only how training starts, not what the model computes."""
    try:
        init = keras.initializers.get(value)
    except (ValueError, TypeError):
        init = None
    found = _initializer_types().get(type(init))
    if found is None:
        notes.append(f"{field} {value!r} has no spec word: the spec's default is written")
        return None
    name, keys = found
    config = init.get_config()
    return {"name": name, **{key: float(config[key]) for key in keys}}


def check_common(config: dict[str, Any], fixed: dict[str, Any]) -> None:
    """NotInSpec for channels-first data, any regularizer or constraint, and every argument in
    `fixed` (Keras argument -> the one value the spec supports) that has another value."""
    if config.get("data_format") not in (None, "channels_last"):
        raise NotInSpec(f"data_format={config['data_format']!r}: the spec is channels-last only")
    for key, value in config.items():
        if (key.endswith("_regularizer") or key.endswith("_constraint")) and value is not None:
            raise NotInSpec(f"{key}: the spec has no regularizers or constraints (remove it, "
                            "or add its penalty to the loss yourself)")
    for key, wanted in fixed.items():
        value = config.get(key, wanted)
        if isinstance(value, list):
            value = tuple(value)
        if value != wanted:
            raise NotInSpec(f"{key}={value!r}: the spec supports {key}={wanted!r} only")


def compact(spec_cls: type[L.LayerSpec], data: dict[str, Any]) -> dict[str, Any]:
    """The mapping validated by its spec class, fields at their defaults left out."""
    try:
        layer = spec_cls.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise NotInSpec(f"{where}: {first['msg']}") from None
    fields = type(layer).model_fields
    return {key: value for key, value in layer.model_dump(mode="json").items()
            if key == "type" or getattr(layer, key) != fields[key].default}


def spec_type(spec_cls: type[L.LayerSpec]) -> str:
    return L.LAYER_TYPES[L.LAYER_CLASSES.index(spec_cls)]


def spec_fields(spec_cls: type[L.LayerSpec], fixed: dict[str, Any] | None = None,
                adjust: Adjust | None = None) -> Callable[..., dict[str, Any]]:
    """A reader that takes each of `spec_cls`'s fields from the Keras config key of the same
    name (initializers and activations in the spec's words), after `check_common`."""

    def read(keras_layer: keras.layers.Layer, notes: list[str]) -> dict[str, Any]:
        config = keras_layer.get_config()
        check_common(config, fixed or {})
        data: dict[str, Any] = {"type": spec_type(spec_cls)}
        for field in spec_cls.model_fields:
            if field in ("type", "name", "inputs") or field not in config:
                continue
            value = config[field]
            if field.endswith("_initializer"):
                value = initializer_spec(value, field, notes)
                if value is None:
                    continue
            elif field in _ACTIVATION_FIELDS:
                value = activation_word(value)
            data[field] = list(value) if isinstance(value, tuple) else value
        if adjust is not None:
            data = adjust(keras_layer, config, data)
        return compact(spec_cls, data)

    return read


def last_axis_only(spec_type_name: str) -> Callable[[Any, dict[str, Any], dict[str, Any]],
                                                    dict[str, Any]]:
    """A `spec_fields` extra check: the layer normalizes the last axis only (Keras' -1, or its
    number for this input), as the spec's `spec_type_name` does."""

    def check(keras_layer: Any, config: dict[str, Any], data: dict[str, Any]
              ) -> dict[str, Any]:
        axis, rank = config["axis"], len(keras_layer.input.shape)
        axes = axis if isinstance(axis, (list, tuple)) else [axis]
        if [a % rank for a in axes] != [rank - 1]:
            raise NotInSpec(f"axis={axis!r}: the spec's {spec_type_name} normalizes the last "
                            "axis only")
        return data

    return check
