"""Shape inference and parameter counting without any framework.

Every backend builds from this: output shapes, TensorFlow-style 'same' paddings and parameter
counts are computed once here, and a spec whose shapes do not work out is rejected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness.spec.errors import SpecError, SpecProblem
from harness.spec.layers import (
    ActivationLayer,
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    Layer,
    MaxPool2D,
)
from harness.spec.schema import NUM_CLASSES, ModelSpec

Shape = tuple[int, ...]
Padding4 = tuple[int, int, int, int]  # top, bottom, left, right


@dataclass(frozen=True)
class LayerInfo:
    index: int
    layer: Layer
    input_shape: Shape
    output_shape: Shape
    trainable_params: int
    non_trainable_params: int
    padding: Padding4 = (0, 0, 0, 0)  # explicit zero padding of conv / pool layers

    @property
    def params(self) -> int:
        return self.trainable_params + self.non_trainable_params


@dataclass(frozen=True)
class ModelSummary:
    layers: tuple[LayerInfo, ...]
    input_shape: Shape

    @property
    def output_shape(self) -> Shape:
        return self.layers[-1].output_shape

    @property
    def trainable_params(self) -> int:
        return sum(info.trainable_params for info in self.layers)

    @property
    def non_trainable_params(self) -> int:
        return sum(info.non_trainable_params for info in self.layers)

    @property
    def total_params(self) -> int:
        return self.trainable_params + self.non_trainable_params


def _window_1d(size: int, kernel: int, stride: int, padding: str) -> tuple[int, int, int] | None:
    """Output size and (before, after) padding along one axis, as TensorFlow computes them."""
    if padding == "valid":
        if size < kernel:
            return None
        return (size - kernel) // stride + 1, 0, 0
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return out, total // 2, total - total // 2


def _window_2d(
    index: int, kind: str, shape: Shape, kernel: tuple[int, int], strides: tuple[int, int],
    padding: str,
) -> tuple[Shape, Padding4]:
    if len(shape) != 3:
        raise _problem(index, "type", f"{kind} needs an image input (H, W, C), got shape {shape}")
    rows = _window_1d(shape[0], kernel[0], strides[0], padding)
    cols = _window_1d(shape[1], kernel[1], strides[1], padding)
    if rows is None or cols is None:
        field = "kernel_size" if kind == "conv2d" else "pool_size"
        raise _problem(
            index, field,
            f"window {kernel[0]}x{kernel[1]} does not fit input {shape[0]}x{shape[1]} "
            f"with padding 'valid'",
        )
    return (rows[0], cols[0], shape[2]), (rows[1], rows[2], cols[1], cols[2])


def _at(index: int, field: str, message: str) -> SpecProblem:
    return SpecProblem(f"layers[{index}].{field}", message)


def _problem(index: int, field: str, message: str) -> SpecError:
    return SpecError([_at(index, field, message)])


def _infer_layer(index: int, layer: Layer, shape: Shape, problems: list[SpecProblem]
                 ) -> LayerInfo:
    """The layer's output shape and parameters. A problem after which the output shape is
    still known (a dense layer on an image, a softmax on one) goes to `problems` and inference
    goes on, so one pass reports them all; one that leaves it unknown raises SpecError."""
    trainable = non_trainable = 0
    padding: Padding4 = (0, 0, 0, 0)
    if isinstance(layer, Dense):
        if len(shape) != 1:
            problems.append(_at(index, "type", f"dense needs a flat input; got shape {shape} "
                                               "(add a flatten layer before it)"))
        out: Shape = (layer.units,)
        trainable = math.prod(shape) * layer.units + (layer.units if layer.use_bias else 0)
    elif isinstance(layer, Conv2D):
        out, padding = _window_2d(index, "conv2d", shape, layer.kernel_size, layer.strides,
                                  layer.padding)
        out = (out[0], out[1], layer.filters)
        kh, kw = layer.kernel_size
        trainable = kh * kw * shape[2] * layer.filters + (layer.filters if layer.use_bias else 0)
    elif isinstance(layer, (MaxPool2D, AvgPool2D)):
        out, padding = _window_2d(index, layer.type, shape, layer.pool_size,
                                  layer.resolved_strides, layer.padding)
    elif isinstance(layer, Flatten):
        out = (math.prod(shape),)
    elif isinstance(layer, BatchNorm):
        out = shape
        trainable, non_trainable = 2 * shape[-1], 2 * shape[-1]
    elif isinstance(layer, (Dropout, ActivationLayer)):
        out = shape
    else:  # pragma: no cover - the schema's union is closed
        raise TypeError(f"unhandled layer type {type(layer).__name__}")
    activation = getattr(layer, "activation", "linear")
    if activation == "softmax" and len(out) != 1:
        problems.append(_at(index, "activation", f"softmax needs a flat input; got shape {out}"))
    return LayerInfo(index, layer, shape, out, trainable, non_trainable, padding)


def infer(spec: ModelSpec) -> ModelSummary:
    """Infer every layer's output shape and parameter count; raise SpecError if they don't fit."""
    shape: Shape | None = tuple(spec.input.shape)
    infos, problems = [], []
    for index, layer in enumerate(spec.layers):
        try:
            info = _infer_layer(index, layer, shape, problems)
        except SpecError as exc:  # the shapes after it are unknown: no later shape checks
            problems.extend(exc.problems)
            shape = None
            break
        infos.append(info)
        shape = info.output_shape
    last_index = len(spec.layers) - 1
    if shape is not None and shape != (NUM_CLASSES,):
        problems.append(_at(last_index, "type", f"the model must end with {NUM_CLASSES} class "
                                                f"probabilities, got shape {shape}"))
    if getattr(spec.layers[-1], "activation", None) != "softmax":
        problems.append(_at(last_index, "activation",
                            "the last layer must be a softmax (categorical cross-entropy is "
                            "computed on class probabilities, as in Keras)"))
    if problems:
        raise SpecError(problems)
    return ModelSummary(tuple(infos), tuple(spec.input.shape))


def describe(layer: Layer) -> str:
    """A short Keras-summary-like label, e.g. 'conv2d 32 3x3 same relu'."""
    if isinstance(layer, Dense):
        return f"dense {layer.units} {layer.activation}"
    if isinstance(layer, Conv2D):
        kh, kw = layer.kernel_size
        stride = "" if layer.strides == (1, 1) else f" /{layer.strides[0]}x{layer.strides[1]}"
        return f"conv2d {layer.filters} {kh}x{kw}{stride} {layer.padding} {layer.activation}"
    if isinstance(layer, (MaxPool2D, AvgPool2D)):
        ph, pw = layer.pool_size
        sh, sw = layer.resolved_strides
        return f"{layer.type} {ph}x{pw} /{sh}x{sw} {layer.padding}"
    if isinstance(layer, Dropout):
        return f"dropout {layer.rate:g}"
    if isinstance(layer, BatchNorm):
        return f"batchnorm m={layer.momentum:g} eps={layer.epsilon:g}"
    if isinstance(layer, ActivationLayer):
        return f"activation {layer.activation}"
    return layer.type
