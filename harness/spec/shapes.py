"""Shape inference and parameter counting without any framework.

Every backend builds from this: the graph of a spec (which layer reads which), output shapes,
TensorFlow-style 'same' paddings and parameter counts are computed once here from the layers'
own `infer` and `weights`, and a spec whose graph or shapes do not work out is rejected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness.spec.errors import SpecError, SpecProblem
from harness.spec.layers import MODEL_INPUT, Layer, Padding4, Shape, ShapeProblem, WeightSpec
from harness.spec.schema import NUM_CLASSES, ModelSpec

INPUT_INDEX = -1  # LayerInfo.inputs' name for the model's input


@dataclass(frozen=True)
class LayerInfo:
    index: int
    layer: Layer
    input_shapes: tuple[Shape, ...]
    output_shape: Shape
    weights: tuple[WeightSpec, ...]
    inputs: tuple[int, ...]  # the layers it reads, by index (INPUT_INDEX: the model's input)
    padding: Padding4 = (0, 0, 0, 0)  # explicit zero padding of conv / pool layers

    @property
    def input_shape(self) -> Shape:
        """The shape of the (first) input."""
        return self.input_shapes[0]

    @property
    def trainable_params(self) -> int:
        return sum(math.prod(w.shape) for w in self.weights if w.trainable)

    @property
    def non_trainable_params(self) -> int:
        return sum(math.prod(w.shape) for w in self.weights if not w.trainable)

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
    def is_chain(self) -> bool:
        """Every layer reads the one before it (a keras.Sequential)."""
        return all(info.inputs == (info.index - 1 if info.index else INPUT_INDEX,)
                   for info in self.layers)

    @property
    def trainable_params(self) -> int:
        return sum(info.trainable_params for info in self.layers)

    @property
    def non_trainable_params(self) -> int:
        return sum(info.non_trainable_params for info in self.layers)

    @property
    def total_params(self) -> int:
        return self.trainable_params + self.non_trainable_params


def _at(index: int, field: str, message: str) -> SpecProblem:
    return SpecProblem(f"layers[{index}].{field}", message)


def _resolve_inputs(spec: ModelSpec) -> tuple[list[tuple[int, ...]], list[SpecProblem]]:
    """Each layer's inputs as indices: the previous layer by default, else its named ones,
    which must be earlier layers (or `input`)."""
    names: dict[str, int] = {}
    resolved: list[tuple[int, ...]] = []
    problems: list[SpecProblem] = []
    for index, layer in enumerate(spec.layers):
        if layer.inputs is None:
            resolved.append((index - 1 if index else INPUT_INDEX,))
        else:
            found = []
            for name in layer.inputs:
                if name == MODEL_INPUT:
                    found.append(INPUT_INDEX)
                elif name in names:
                    found.append(names[name])
                else:
                    problems.append(_at(index, "inputs", f"{name!r} is not the name of an "
                                        f"earlier layer (or {MODEL_INPUT!r}); earlier names: "
                                        f"{sorted(names) or 'none'}"))
            resolved.append(tuple(found))
        low, high = type(layer).arity
        count = len(layer.inputs) if layer.inputs is not None else 1
        if count < low or (high is not None and count > high):
            wanted = f"{low}" if low == high else f"at least {low}" if high is None \
                else f"{low} to {high}"
            problems.append(_at(index, "inputs", f"{layer.type} takes {wanted} input(s); got "
                                f"{count}"))
        if layer.name is not None:
            if layer.name == MODEL_INPUT or layer.name in names:
                problems.append(_at(index, "name", f"{layer.name!r} is taken (by the model "
                                    "input or an earlier layer); names must be unique"))
            names[layer.name] = index
    return resolved, problems


def _unused(spec: ModelSpec, inputs: list[tuple[int, ...]]) -> list[SpecProblem]:
    """Layers whose output no later layer reads (except the last: the model's output)."""
    read = {i for sources in inputs for i in sources}
    return [_at(index, "name", f"the output of layer {index} ({layer.type}) is never used; "
                               "every layer but the last must feed a later one")
            for index, layer in enumerate(spec.layers[:-1]) if index not in read]


def _final_checks(spec: ModelSpec, shape: Shape | None) -> list[SpecProblem]:
    last_index = len(spec.layers) - 1
    problems = []
    if spec.input.npz is not None:  # your own data: as many classes as the last layer's units
        if shape is not None and (len(shape) != 1 or shape[0] < 2):
            problems.append(_at(last_index, "type", "the model must end with one probability "
                                                    f"per class (2 or more), got shape {shape}"))
    elif shape is not None and shape != (NUM_CLASSES,):
        problems.append(_at(last_index, "type", f"the model must end with {NUM_CLASSES} class "
                                                f"probabilities, got shape {shape}"))
    if getattr(spec.layers[-1], "activation", None) != "softmax":
        problems.append(_at(last_index, "activation",
                            "the last layer must be a softmax (categorical cross-entropy is "
                            "computed on class probabilities, as in Keras)"))
    return problems


def infer(spec: ModelSpec) -> ModelSummary:
    """Infer every layer's output shape and parameter count; raise SpecError if they don't fit."""
    inputs, problems = _resolve_inputs(spec)
    if problems:
        raise SpecError(problems)
    problems = _unused(spec, inputs)
    outputs: dict[int, Shape] = {INPUT_INDEX: tuple(spec.input.shape)}
    infos: list[LayerInfo] = []
    shape: Shape | None = None
    for index, layer in enumerate(spec.layers):
        shapes = tuple(outputs[i] for i in inputs[index])
        found: list[tuple[str, str]] = []
        try:
            out = layer.infer(shapes, found)
        except ShapeProblem as exc:  # the shapes after it are unknown: no later shape checks
            problems.extend(_at(index, f, m) for f, m in found)
            problems.append(_at(index, exc.field, exc.message))
            shape = None
            break
        problems.extend(_at(index, f, m) for f, m in found)
        if getattr(layer, "activation", "linear") == "softmax" and len(out.shape) != 1:
            problems.append(_at(index, "activation",
                                f"softmax needs a flat input; got shape {out.shape}"))
        infos.append(LayerInfo(index, layer, shapes, out.shape, layer.weights(shapes, out),
                               inputs[index], out.padding))
        outputs[index] = shape = out.shape
    problems.extend(_final_checks(spec, shape))
    if problems:
        raise SpecError(problems)
    return ModelSummary(tuple(infos), tuple(spec.input.shape))


def describe(layer: Layer) -> str:
    """A short Keras-summary-like label, e.g. 'conv2d 32 3x3 same relu'."""
    return layer.describe()


def num_classes(spec: ModelSpec) -> int:
    """The classes the model tells apart: its output's size (10 for MNIST and Fashion-MNIST)."""
    return int(infer(spec).output_shape[0])
