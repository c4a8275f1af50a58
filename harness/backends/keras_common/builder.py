"""Spec -> compiled Keras model: one Keras layer per spec layer, named `l<index>_<type>`; a
keras.Sequential for a chain, a functional model for a graph spec (layers naming `inputs`).
Each layer is made by its entry in `harness.backends.keras_common.layers.ENTRIES`.

Everything here is plain Keras, the same on every Keras backend: the spec's semantics *are*
Keras', so each field maps to the Keras argument of the same name. Import through a harness
backend package (`keras_tf`, `keras_jax`, `keras_torch`), which selects the Keras backend first.
"""

from __future__ import annotations

import re

import keras

from harness.backends.keras_common.layers import ENTRIES
from harness.backends.keras_common.schedules import learning_rate
from harness.spec import ModelSpec
from harness.spec import layers as L
from harness.spec import schema as S
from harness.spec.shapes import INPUT_INDEX, LayerInfo, ModelSummary, infer

_NAME = re.compile(r"^l(\d+)_([a-z0-9_]+)$")


def layer_name(index: int, layer: L.Layer) -> str:
    """Keras layer name that maps back to the spec index (survives save/load)."""
    return f"l{index}_{layer.type}"


def spec_index(keras_layer: keras.layers.Layer) -> int:
    """Inverse of `layer_name`."""
    match = _NAME.match(keras_layer.name)
    if match is None:
        raise ValueError(f"Keras layer {keras_layer.name!r} was not built from a spec")
    return int(match.group(1))


def make_initializer(init: L.Initializer) -> keras.initializers.Initializer:
    """The Keras initializer of the same name (numbers are overwritten by canonical weights)."""
    inits = keras.initializers
    if isinstance(init, L.Normal):
        return inits.RandomNormal(mean=init.mean, stddev=init.stddev)
    if isinstance(init, L.TruncatedNormal):
        return inits.TruncatedNormal(mean=init.mean, stddev=init.stddev)
    if isinstance(init, L.Uniform):
        return inits.RandomUniform(minval=init.minval, maxval=init.maxval)
    if isinstance(init, L.Constant):
        return inits.Constant(init.value)
    if isinstance(init, L.Orthogonal):
        return inits.Orthogonal(gain=init.gain)
    simple = {
        L.GlorotUniform: inits.GlorotUniform, L.GlorotNormal: inits.GlorotNormal,
        L.HeNormal: inits.HeNormal, L.HeUniform: inits.HeUniform,
        L.LecunNormal: inits.LecunNormal, L.LecunUniform: inits.LecunUniform,
        L.Zeros: inits.Zeros, L.Ones: inits.Ones,
    }
    return simple[type(init)]()


def name_spec_initializers(keras_layer: keras.layers.Layer, layer: L.Layer) -> None:
    """The spec's initializers on a built layer: its config (and a saved model) names them,
    though the numbers come from `harness.spec.initial_weights`, drawn once in numpy. Keras'
    own draw at build would be overwritten anyway, and on JAX each new shape's draw is an XLA
    compilation of its own (about a second each)."""
    for field in type(layer).model_fields:  # Keras names each initializer as the spec does
        if not field.endswith("_initializer"):
            continue
        # MultiHeadAttention keeps its initializers (and its config reads them) as `_<field>`
        for attribute in (field, f"_{field}"):
            if hasattr(keras_layer, attribute):
                setattr(keras_layer, attribute, make_initializer(getattr(layer, field)))


def make_layer(info: LayerInfo, dtype: str = "float32") -> keras.layers.Layer:
    """One Keras layer for one spec layer, computing in `dtype`."""
    common = {"name": layer_name(info.index, info.layer), "dtype": dtype}
    return ENTRIES[type(info.layer)].make(info, common)


def keras_variables(keras_layer: keras.layers.Layer) -> dict[str, object]:
    """Canonical array name (without the layer index) -> the Keras variable holding it."""
    if not keras_layer.weights:
        return {}
    spec_type = _NAME.match(keras_layer.name).group(2)  # type: ignore[union-attr]
    return _ENTRY_BY_TYPE[spec_type].variables(keras_layer)


_ENTRY_BY_TYPE = {L.LAYER_TYPES[L.LAYER_CLASSES.index(cls)]: entry
                  for cls, entry in ENTRIES.items()}


def make_optimizer(opt: S.Optimizer, schedule: S.Schedule | None = None,
                   steps_per_epoch: int | None = None,
                   dtype: str = "float32") -> keras.optimizers.Optimizer:
    """The Keras optimizer with every hyperparameter the spec states (no Keras defaults); its
    learning rate follows `schedule` (harness.backends.keras_common.schedules) when given."""
    ko = keras.optimizers
    lr = learning_rate(opt, schedule, steps_per_epoch, dtype)
    if isinstance(opt, S.SGD):
        return ko.SGD(learning_rate=lr, momentum=opt.momentum, nesterov=opt.nesterov)
    if isinstance(opt, S.Adam):
        return ko.Adam(learning_rate=lr, beta_1=opt.beta_1, beta_2=opt.beta_2,
                       epsilon=opt.epsilon)
    if isinstance(opt, S.AdamW):
        return ko.AdamW(learning_rate=lr, weight_decay=opt.weight_decay, beta_1=opt.beta_1,
                        beta_2=opt.beta_2, epsilon=opt.epsilon)
    if isinstance(opt, S.Adadelta):
        return ko.Adadelta(learning_rate=lr, rho=opt.rho, epsilon=opt.epsilon)
    if isinstance(opt, S.RMSprop):
        return ko.RMSprop(learning_rate=lr, rho=opt.rho, momentum=opt.momentum,
                          epsilon=opt.epsilon, centered=opt.centered)
    if isinstance(opt, S.Adagrad):
        return ko.Adagrad(learning_rate=lr, initial_accumulator_value=opt.initial_accumulator_value,
                          epsilon=opt.epsilon)
    if isinstance(opt, S.Nadam):
        return ko.Nadam(learning_rate=lr, beta_1=opt.beta_1, beta_2=opt.beta_2,
                        epsilon=opt.epsilon)
    raise TypeError(f"unhandled optimizer {type(opt).__name__}")  # pragma: no cover


_LOSSES = {"categorical_crossentropy": keras.losses.CategoricalCrossentropy}


def _functional(summary: ModelSummary, layers: list[keras.layers.Layer], dtype: str,
                name: str) -> keras.Model:
    inputs = keras.Input(shape=summary.input_shape, dtype=dtype)
    outputs: dict[int, object] = {INPUT_INDEX: inputs}
    for info, keras_layer in zip(summary.layers, layers, strict=True):
        sources = [outputs[i] for i in info.inputs]
        arity = type(info.layer).arity
        outputs[info.index] = keras_layer(sources if arity != (1, 1) else sources[0])
    return keras.Model(inputs, outputs[len(layers) - 1], name=name)


def build_model(spec: ModelSpec, jit_compile: bool | str = "auto",
                dtype: str = "float32", steps_per_epoch: int | None = None) -> keras.Model:
    """Build and compile `spec`, its variables zero until the caller loads weights (see
    `name_spec_initializers`). Shapes are checked first by `infer` (clear errors, no Keras).
    `steps_per_epoch`: what a schedule counted in epochs divides the optimizer's steps by."""
    summary = infer(spec)
    layers = [make_layer(info, dtype) for info in summary.layers]
    name = spec.name.replace(".", "_").replace("-", "_")
    if summary.is_chain:
        model: keras.Model = keras.Sequential(
            [keras.Input(shape=tuple(spec.input.shape), dtype=dtype), *layers], name=name)
    else:
        model = _functional(summary, layers, dtype, name)
    for keras_layer, layer in zip(layers, spec.layers, strict=True):
        name_spec_initializers(keras_layer, layer)
    # One-hot labels + the softmax output: Keras computes the loss from the cached logits.
    # The loss computes in the model's dtype (a Keras loss defaults to floatx, float32).
    loss = _LOSSES[spec.train.loss](dtype=dtype)
    optimizer = make_optimizer(spec.train.optimizer, spec.train.schedule, steps_per_epoch, dtype)
    model.compile(optimizer=optimizer,
                  loss=loss, metrics=["accuracy"], jit_compile=jit_compile)
    return model


def compile_mode(model: keras.Model) -> str:
    """How `fit` runs the model's steps on this Keras backend: 'xla' (TensorFlow or JAX with
    jit_compile), 'graph' (TensorFlow's tf.function without XLA), 'torch.compile' (PyTorch with
    jit_compile) or 'eager' (op by op: run_eagerly, or JAX and PyTorch without jit_compile)."""
    if model.run_eagerly:
        return "eager"
    compiled, plain = _COMPILE_MODES[keras.backend.backend()]
    return compiled if model.jit_compile else plain


# Keras backend -> (mode with jit_compile=True, mode without)
_COMPILE_MODES = {"tensorflow": ("xla", "graph"), "jax": ("xla", "eager"),
                  "torch": ("torch.compile", "eager")}
