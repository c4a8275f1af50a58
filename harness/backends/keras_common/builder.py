"""Spec -> compiled keras.Sequential: one Keras layer per spec layer, named `l<index>_<type>`.

Everything here is plain Keras, the same on every Keras backend: the spec's semantics *are*
Keras', so each field maps to the Keras argument of the same name. Import through a harness
backend package (`keras_tf`, `keras_jax`, `keras_torch`), which selects the Keras backend first.
"""

from __future__ import annotations

import re
from typing import Any

import keras

from harness.spec import ModelSpec
from harness.spec import layers as L
from harness.spec import schema as S
from harness.spec.shapes import infer

_NAME = re.compile(r"^l(\d+)_[a-z0-9]+$")


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
    simple = {
        L.GlorotUniform: inits.GlorotUniform, L.GlorotNormal: inits.GlorotNormal,
        L.HeNormal: inits.HeNormal, L.HeUniform: inits.HeUniform,
        L.LecunNormal: inits.LecunNormal, L.LecunUniform: inits.LecunUniform,
        L.Zeros: inits.Zeros, L.Ones: inits.Ones,
    }
    return simple[type(init)]()


def _weighted_kwargs(layer: L.Dense | L.Conv2D) -> dict[str, Any]:
    # Variables start at zero; `build_model` then names the spec's initializers on the layer.
    return {"activation": layer.activation, "use_bias": layer.use_bias,
            "kernel_initializer": "zeros", "bias_initializer": "zeros"}


def _name_spec_initializers(keras_layer: keras.layers.Layer, layer: L.Layer) -> None:
    """The spec's initializers on a built layer: its config (and a saved model) names them,
    though the numbers come from `harness.spec.initial_weights`, drawn once in numpy. Keras'
    own draw at build would be overwritten anyway, and on JAX each new shape's draw is an XLA
    compilation of its own (about a second each)."""
    if isinstance(layer, (L.Dense, L.Conv2D)):
        keras_layer.kernel_initializer = make_initializer(layer.kernel_initializer)
        keras_layer.bias_initializer = make_initializer(layer.bias_initializer)


def make_layer(index: int, layer: L.Layer, dtype: str = "float32") -> keras.layers.Layer:
    """One Keras layer for one spec layer, computing in `dtype`."""
    return _make_layer(layer, {"name": layer_name(index, layer), "dtype": dtype})


def _make_layer(layer: L.Layer, common: dict[str, Any]) -> keras.layers.Layer:
    kl = keras.layers
    if isinstance(layer, L.Dense):
        return kl.Dense(layer.units, **common, **_weighted_kwargs(layer))
    if isinstance(layer, L.Conv2D):
        # 'same' is TensorFlow's padding natively (extra row/column at the end).
        return kl.Conv2D(layer.filters, layer.kernel_size, strides=layer.strides,
                         padding=layer.padding, **common, **_weighted_kwargs(layer))
    if isinstance(layer, (L.MaxPool2D, L.AvgPool2D)):
        pool = kl.MaxPooling2D if isinstance(layer, L.MaxPool2D) else kl.AveragePooling2D
        return pool(pool_size=layer.pool_size, strides=layer.resolved_strides,
                    padding=layer.padding, **common)
    if isinstance(layer, L.Dropout):
        return kl.Dropout(layer.rate, **common)
    if isinstance(layer, L.BatchNorm):
        return kl.BatchNormalization(axis=-1, momentum=layer.momentum, epsilon=layer.epsilon,
                                     **common)
    if isinstance(layer, L.ActivationLayer):
        return kl.Activation(layer.activation, **common)
    if isinstance(layer, L.Flatten):
        return kl.Flatten(**common)
    raise TypeError(f"unhandled layer type {type(layer).__name__}")  # pragma: no cover


def make_optimizer(opt: S.Optimizer) -> keras.optimizers.Optimizer:
    """The Keras optimizer with every hyperparameter the spec states (no Keras defaults)."""
    ko = keras.optimizers
    lr = opt.learning_rate
    if isinstance(opt, S.SGD):
        return ko.SGD(learning_rate=lr, momentum=opt.momentum, nesterov=opt.nesterov)
    if isinstance(opt, S.Adam):
        return ko.Adam(learning_rate=lr, beta_1=opt.beta_1, beta_2=opt.beta_2,
                       epsilon=opt.epsilon)
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


def build_model(spec: ModelSpec, jit_compile: bool | str = "auto",
                dtype: str = "float32") -> keras.Sequential:
    """Build and compile `spec`, its variables zero until the caller loads weights (see
    `_name_spec_initializers`). Shapes are checked first by `infer` (clear errors, no Keras)."""
    infer(spec)
    layers = [make_layer(i, layer, dtype) for i, layer in enumerate(spec.layers)]
    model = keras.Sequential([keras.Input(shape=tuple(spec.input.shape), dtype=dtype), *layers],
                             name=spec.name.replace(".", "_").replace("-", "_"))
    for keras_layer, layer in zip(layers, spec.layers, strict=True):
        _name_spec_initializers(keras_layer, layer)
    # One-hot labels + the softmax output: Keras computes the loss from the cached logits.
    # The loss computes in the model's dtype (a Keras loss defaults to floatx, float32).
    loss = _LOSSES[spec.train.loss](dtype=dtype)
    model.compile(optimizer=make_optimizer(spec.train.optimizer),
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
