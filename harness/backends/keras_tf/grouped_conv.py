"""Grouped convolutions (conv2d `groups` > 1) in a graph tf2onnx can convert.

Keras on TensorFlow runs a grouped convolution inside a nested `tf.function(jit_compile=True)`
(TensorFlow's CPU kernels lack groups), which a traced graph keeps as one opaque
StatefulPartitionedCall that tf2onnx cannot convert. While the export traces, Keras'
convolution is the plain `tf.nn.convolution` it wraps: the traced graph is only converted,
never run by TensorFlow, and tf2onnx turns the grouped Conv2D into an ONNX Conv with `group`.
Keras private API (keras.src, as of Keras 3.15); the ONNX Runtime parity check of every export
catches a change in it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import tensorflow as tf
from keras.src.backend.tensorflow import nn as keras_tf_nn


def _plain_conv(inputs: Any, kernel: Any, strides: Any = 1, padding: str = "valid",
                data_format: str | None = None, dilation_rate: Any = 1) -> Any:
    tf_format = keras_tf_nn._convert_data_format(data_format or "channels_last",
                                                 len(inputs.shape))
    return tf.nn.convolution(inputs, kernel, strides, padding.upper(), data_format=tf_format,
                             dilations=dilation_rate)


@contextmanager
def traced_without_xla() -> Iterator[None]:
    original = keras_tf_nn.conv
    keras_tf_nn.conv = _plain_conv
    try:
        yield
    finally:
        keras_tf_nn.conv = original
