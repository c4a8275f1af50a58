"""Keras 3 -> ONNX through tf2onnx's `from_function` route.

`tf2onnx.convert.from_keras` fails on Keras 3 models; tracing a tf.function of the model in
inference mode (what `keras.Model.export(format="onnx")` does) works.
"""

from __future__ import annotations

from pathlib import Path

import keras
import tensorflow as tf

from harness.onnx_io import INPUT_NAME, standardize_interface


def export_onnx(model: keras.Model, path: Path, opset: int) -> None:
    import onnx
    import tf2onnx

    signature = [tf.TensorSpec([None, *model.input_shape[1:]], tf.float32, name=INPUT_NAME)]

    @tf.function(input_signature=signature, autograph=False)
    def serve(inputs: tf.Tensor) -> tf.Tensor:
        return model(inputs, training=False)

    proto, _ = tf2onnx.convert.from_function(serve, input_signature=signature, opset=opset)
    onnx.save(standardize_interface(proto), str(path))
