"""Keras entries for convolutions. 'same' is TensorFlow's padding natively (the extra row or
column at the end); every field maps to the Keras argument of the same name. Initializers
start as zeros and are named on the layer by the builder (`name_spec_initializers`)."""

from __future__ import annotations

from typing import Any

import keras

from harness.backends.keras_common.layers.base import KerasEntry, weighted_kwargs
from harness.backends.keras_common.layers.inverse import spec_fields
from harness.spec import layers as L
from harness.spec.shapes import LayerInfo

_kl = keras.layers


def _window(layer: Any) -> dict[str, Any]:
    return {"kernel_size": layer.kernel_size, "strides": layer.strides,
            "padding": layer.padding, "dilation_rate": layer.dilation_rate,
            "activation": layer.activation, "use_bias": layer.use_bias,
            "bias_initializer": "zeros"}


def _depthwise(info: LayerInfo, common: dict[str, Any]) -> keras.layers.Layer:
    return _kl.DepthwiseConv2D(depth_multiplier=info.layer.depth_multiplier,
                               depthwise_initializer="zeros", **_window(info.layer), **common)


def _separable(info: LayerInfo, common: dict[str, Any]) -> keras.layers.Layer:
    return _kl.SeparableConv2D(info.layer.filters, depth_multiplier=info.layer.depth_multiplier,
                               depthwise_initializer="zeros", pointwise_initializer="zeros",
                               **_window(info.layer), **common)


ENTRIES = {
    L.Conv2D: KerasEntry(lambda info, common: _kl.Conv2D(
        info.layer.filters, info.layer.kernel_size, strides=info.layer.strides,
        padding=info.layer.padding, dilation_rate=info.layer.dilation_rate,
        groups=info.layer.groups, **common, **weighted_kwargs(info.layer)),
        keras_classes=(_kl.Conv2D,), read=spec_fields(L.Conv2D, {"lora_rank": None})),
    L.DepthwiseConv2D: KerasEntry(_depthwise, keras_classes=(_kl.DepthwiseConv2D,),
                                  read=spec_fields(L.DepthwiseConv2D)),
    L.SeparableConv2D: KerasEntry(_separable, keras_classes=(_kl.SeparableConv2D,),
                                  read=spec_fields(L.SeparableConv2D)),
    L.Conv1D: KerasEntry(lambda info, common: _kl.Conv1D(
        info.layer.filters, info.layer.kernel_size, strides=info.layer.strides,
        padding=info.layer.padding, dilation_rate=info.layer.dilation_rate,
        **common, **weighted_kwargs(info.layer)),
        keras_classes=(_kl.Conv1D,), read=spec_fields(L.Conv1D, {"groups": 1,
                                                                  "lora_rank": None})),
}
