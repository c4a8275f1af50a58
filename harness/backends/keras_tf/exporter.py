"""Keras 3 -> ONNX through tf2onnx's `from_function` route.

`tf2onnx.convert.from_keras` fails on Keras 3 models; tracing a tf.function of the model in
inference mode (what `keras.Model.export(format="onnx")` does) works.

tf2onnx runs with `continue_on_error`, so a TensorFlow op it has no handler for is copied into
the graph unchanged and only the ONNX checker finds it. Such ops get a handler here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from harness.backends.keras_tf.grouped_conv import traced_without_xla
from harness.backends.onnx_io import INPUT_NAME, standardize_interface


def _erfc_as_one_minus_erf(ctx: Any, node: Any, name: str, args: list[Any]) -> None:
    """Erfc(x) -> Sub(1, Erf(x)). ONNX has Erf but no Erfc; Keras' exact gelu is
    0.5 * x * erfc(-x / sqrt(2)). Where erfc is tiny (x << 0) the subtraction loses its
    relative precision, but gelu multiplies it by x there: the absolute error stays ~1e-7."""
    from tf2onnx import utils

    x = node.input[0]
    dtype = ctx.get_dtype(x)
    erf = ctx.make_node("Erf", [x], name=utils.make_name(f"{name}_erf"),
                        shapes=[ctx.get_shape(x)], dtypes=[dtype])
    one = ctx.make_const(utils.make_name(f"{name}_one"),
                         np.array(1, dtype=utils.map_onnx_to_numpy_type(dtype)))
    node.type = "Sub"  # the node keeps its output name, so its consumers need no rewiring
    ctx.replace_inputs(node, [one.output[0], erf.output[0]])


# TensorFlow op -> (tf2onnx custom handler, its extra arguments)
_OP_HANDLERS = {"Erfc": (_erfc_as_one_minus_erf, [])}


def export_onnx(model: keras.Model, path: Path, opset: int) -> None:
    import onnx
    import tf2onnx

    signature = [tf.TensorSpec([None, *model.input_shape[1:]], tf.float32, name=INPUT_NAME)]

    @tf.function(input_signature=signature, autograph=False)
    def serve(inputs: tf.Tensor) -> tf.Tensor:
        return model(inputs, training=False)

    with traced_without_xla():  # grouped convolutions: see grouped_conv
        proto, _ = tf2onnx.convert.from_function(serve, input_signature=signature,
                                                 opset=opset,
                                                 custom_op_handlers=dict(_OP_HANDLERS))
    onnx.save(standardize_interface(proto), str(path))
