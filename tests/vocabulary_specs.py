"""The specs that speak the whole spec language, read from the schema itself (see
test_vocabulary.py): every activation, initializer, layer type, dataset, optimizer, boolean
switch, padding x stride x kernel parity of every window layer, the BatchNorm and Dropout
placements, graph merges, and every learning-rate schedule in each unit. A layer family adds
its `<family>_spec()` here and to `vocabulary_specs()`."""

from __future__ import annotations

import itertools
from typing import Any, get_args

import numpy as np
import yaml

from harness.spec import ModelSpec, parse_spec
from harness.spec import layers as L
from harness.spec import schema as S
from harness.spec.initializers import sample

TOLERANCE = 1e-5  # max |probability difference| between any two implementations
N_IMAGES = 16  # predicted, exported-and-run, and one training batch


def _members(annotated: Any) -> tuple[type[L.StrictModel], ...]:
    """The classes of a discriminated union `Annotated[A | B | ..., Field(discriminator)]`."""
    return get_args(get_args(annotated)[0])


def _tag(cls: type[L.StrictModel], field: str) -> str:
    (value,) = get_args(cls.model_fields[field].annotation)
    return value


ACTIVATIONS: tuple[str, ...] = get_args(L.Activation)
PADDINGS: tuple[str, ...] = get_args(L.Padding)
DATASETS: tuple[str, ...] = S.DATASETS  # the built-in ones (a spec may also name an .npz)
INITIALIZERS = {_tag(cls, "name"): cls for cls in _members(L.Initializer)}
LAYER_TYPES = {_tag(cls, "type"): cls for cls in _members(L.Layer)}
OPTIMIZERS = {_tag(cls, "name"): cls for cls in _members(S.Optimizer)}
SCHEDULES = {_tag(cls, "name"): cls for cls in _members(S.Schedule)}
SCHEDULE_UNITS: tuple[str, ...] = get_args(S.ScheduleUnit)
WINDOW_TYPES = tuple(name for name, cls in LAYER_TYPES.items() if "padding" in cls.model_fields)

# Values for fields the schema requires but that are not words: initializer arguments (wider
# than the defaults, so no layer squashes the signal that makes a wrong upstream layer show),
# and each optimizer's hyperparameters (large epsilons: where epsilon enters the update shows).
INITIALIZER_ARGUMENTS = {"value": 0.3, "stddev": 0.5, "minval": -0.5, "maxval": 0.5}
HYPERPARAMETERS: dict[str, dict[str, float]] = {
    "sgd": {"learning_rate": 0.1, "momentum": 0.9},
    "adam": {"learning_rate": 0.01, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 0.01},
    "adadelta": {"learning_rate": 1.0, "rho": 0.95, "epsilon": 0.001},
    "rmsprop": {"learning_rate": 0.01, "rho": 0.9, "momentum": 0.5, "epsilon": 0.01},
    "adagrad": {"learning_rate": 0.1, "initial_accumulator_value": 0.1, "epsilon": 0.01},
    "nadam": {"learning_rate": 0.01, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 0.01},
    "adamw": {"learning_rate": 0.01, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 0.01,
              "weight_decay": 0.5},
}
# Each schedule in each unit, with an optimizer whose state a schedule could upset (SGD's and
# RMSprop's momentum, AdamW's decay by the step's rate): the rate changes within
# SCHEDULE_EPOCHS epochs of SCHEDULE_STEPS steps, at every step or at every epoch.
SCHEDULE_EPOCHS, SCHEDULE_STEPS = 3, 2
SCHEDULE_CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "step-step": ("sgd", {"name": "step", "step_size": 2, "gamma": 0.5, "unit": "step"}),
    "step-epoch": ("sgd", {"name": "step", "step_size": 1, "gamma": 0.25, "unit": "epoch"}),
    "exponential-step": ("rmsprop", {"name": "exponential", "decay_steps": 2,
                                     "decay_rate": 0.25, "staircase": False, "unit": "step"}),
    "exponential-epoch": ("adamw", {"name": "exponential", "decay_steps": 1,
                                    "decay_rate": 0.5, "staircase": True, "unit": "epoch"}),
    "cosine-step": ("adamw", {"name": "cosine", "decay_steps": 4, "alpha": 0.1,
                              "unit": "step"}),
    "cosine-epoch": ("sgd", {"name": "cosine", "decay_steps": 2, "alpha": 0.0,
                             "unit": "epoch"}),
}
# Each window layer twice per spec, with a different axis strided each time: over the two
# shapes every axis meets (even kernel, stride 1), (odd, 2), (even, 2) and (odd, 1).
WINDOW_SHAPES = (((2, 3), (1, 2)), ((2, 3), (2, 1)))
# The window layers conv_image_spec() and conv_sequence_spec() speak (windows_spec the others)
CONV_WINDOWS = ("depthwise_conv2d", "separable_conv2d", "conv1d")
PLACEMENTS = ("first layer", "after conv2d", "after a pool", "after flatten", "after dense",
              "before activation")


def bool_fields(cls: type[L.StrictModel]) -> list[str]:
    return [name for name, field in cls.model_fields.items() if field.annotation is bool]


def _initializer(name: str) -> dict[str, Any]:
    fields = INITIALIZERS[name].model_fields
    return {"name": name, **{key: value for key, value in INITIALIZER_ARGUMENTS.items()
                             if key in fields}}


def _varies(name: str) -> bool:
    """Random initializers; constant ones (zeros, ones, ...) would hide every layer before."""
    init = INITIALIZERS[name].model_validate(_initializer(name))
    return len(np.unique(sample(init, (3, 3), np.random.default_rng(0)))) > 1


KERNEL_INITIALIZERS = [name for name in INITIALIZERS if _varies(name)]


def _spec(name: str, dataset: str, shape: list[int], layers: list[dict[str, Any]],
          optimizer: dict[str, Any] | None = None,
          schedule: dict[str, Any] | None = None) -> ModelSpec:
    """Through YAML and the loader, as a user's file goes."""
    optimizer = optimizer or {"name": "sgd", **HYPERPARAMETERS["sgd"], "nesterov": False}
    data = {"name": name, "input": {"dataset": dataset, "shape": shape}, "layers": layers,
            "train": {"optimizer": optimizer, "batch_size": N_IMAGES, "epochs": 1}}
    if schedule is not None:
        data["train"]["schedule"] = schedule
    return parse_spec(yaml.safe_dump(data), source=f"<{name}>")


def _dense(index: int, units: int, activation: str, **extra: Any) -> dict[str, Any]:
    return {"type": "dense", "units": units, "activation": activation,
            "kernel_initializer": _initializer(KERNEL_INITIALIZERS[index % len(
                KERNEL_INITIALIZERS)]), **extra}


# orthogonal needs a matrix: only a GRU's (2, 3 * units) bias can start so (recurrent_spec)
VECTOR_INITIALIZERS = [name for name in INITIALIZERS if name != "orthogonal"]


def _bias(slot: int) -> dict[str, Any]:
    """Bias slots are numbered across the specs, so that together they use every initializer."""
    return {"bias_initializer": _initializer(VECTOR_INITIALIZERS[slot % len(VECTOR_INITIALIZERS)])}


def mlp_spec() -> ModelSpec:
    """A dense layer per activation: its own activation, or (every other one) linear followed
    by an activation layer. Dropout first; BatchNorm and Dropout after dense, before an
    activation layer."""
    layers: list[dict[str, Any]] = [{"type": "dropout", "rate": 0.2}]
    for i, activation in enumerate(ACTIVATIONS):
        if i % 2 == 0:
            layers.append(_dense(i, 8, activation, **_bias(i)))
            continue
        layers.append(_dense(i, 8, "linear", **_bias(i)))
        if i == 1:
            layers.append({"type": "batchnorm", "momentum": 0.8, "epsilon": 0.001})
        if i == 3:
            layers.append({"type": "dropout", "rate": 0.5})
        layers.append({"type": "activation", "activation": activation})
    layers.append(_dense(0, 10, "softmax", use_bias=False))
    return _spec("vocabulary_mlp", DATASETS[0], [784], layers)


def windows_spec(variant: int) -> ModelSpec:
    """Every window type twice (WINDOW_SHAPES); over the variants each gets every padding.
    Conv and activation layers cycle through the element-wise activations; BatchNorm (variant
    0) or Dropout (1) first, after a conv, after a pool and after flatten."""
    elementwise = [a for a in ACTIVATIONS if a != "softmax"]  # softmax needs a flat input
    act = itertools.cycle(elementwise[variant:] + elementwise[:variant])
    first = ({"type": "batchnorm", "momentum": 0.9, "epsilon": 0.001} if variant == 0
             else {"type": "dropout", "rate": 0.1})
    layers: list[dict[str, Any]] = [first]
    for t, kind in enumerate(k for k in WINDOW_TYPES if k not in CONV_WINDOWS):
        for j, (kernel, strides) in enumerate(WINDOW_SHAPES):
            padding = PADDINGS[(variant + t + j) % len(PADDINGS)]
            if kind == "conv2d":
                bias = _bias(len(ACTIVATIONS) + 2 * variant) if j == 0 else {"use_bias": False}
                layers.append({"type": kind, "filters": 3, "kernel_size": list(kernel),
                               "strides": list(strides), "padding": padding,
                               "activation": next(act), **bias, "kernel_initializer":
                               _initializer(KERNEL_INITIALIZERS[variant * 2 + j])})
                layers.append({"type": "batchnorm", "momentum": 0.9, "epsilon": 0.001}
                              if j == variant else {"type": "dropout", "rate": 0.3})
            else:
                layers.append({"type": kind, "pool_size": list(kernel), "strides": list(strides),
                               "padding": padding})
                layers.append({"type": "activation", "activation": next(act)})
    layers.insert(-1, {"type": "batchnorm", "momentum": 0.9, "epsilon": 0.001} if variant == 0
                  else {"type": "dropout", "rate": 0.25})  # after a pool
    layers += [{"type": "flatten"},
               {"type": "batchnorm", "momentum": 0.9, "epsilon": 0.01} if variant == 0
               else {"type": "dropout", "rate": 0.25},
               _dense(variant, 10, "linear" if variant else "softmax",
                      **_bias(len(ACTIVATIONS) + 2 * variant + 1))]
    if variant:  # the final softmax as a layer of its own
        layers.append({"type": "activation", "activation": "softmax"})
    return _spec(f"vocabulary_windows_{variant}", DATASETS[variant % len(DATASETS)],
                 [28, 28, 1], layers)


def optimizer_cases() -> dict[str, dict[str, Any]]:
    """Each optimizer, and each of its boolean switches both ways."""
    cases = {}
    for name, cls in OPTIMIZERS.items():
        switches = bool_fields(cls)
        for values in itertools.product((False, True), repeat=len(switches)):
            chosen = dict(zip(switches, values, strict=True))
            label = "-".join([name, *(f"{s}={v}" for s, v in chosen.items())])
            cases[label] = {"name": name, **HYPERPARAMETERS.get(name, {}), **chosen}
    return cases


def optimizer_spec(label: str) -> ModelSpec:
    """Dropout- and BatchNorm-free and small: both backends' trained weights must agree. A
    label of SCHEDULE_CASES: its optimizer (with momentum) under its schedule."""
    layers = [{"type": "dense", "units": 8, "activation": "tanh"},
              {"type": "dense", "units": 10, "activation": "softmax"}]
    if label in SCHEDULE_CASES:
        name, schedule = SCHEDULE_CASES[label]
        optimizer = {"name": name, **HYPERPARAMETERS[name]}
        optimizer |= {key: False for key in bool_fields(OPTIMIZERS[name])}
        return _spec(f"vocabulary_schedule_{label}", DATASETS[0], [784], layers, optimizer,
                     schedule)
    return _spec("vocabulary_optimizer", DATASETS[0], [784], layers,
                 optimizer_cases()[label])


def graph_spec() -> ModelSpec:
    """A graph spec: a residual addition and a concatenation of images and of flat vectors,
    both global pools, and a Flatten read by a dense layer and an addition at once (torch must
    then flatten in Keras' order and the dense layer must not permute its kernel)."""
    layers: list[dict[str, Any]] = [
        {"type": "conv2d", "filters": 4, "kernel_size": 3, "padding": "same",
         "activation": "relu", "name": "c1"},
        {"type": "conv2d", "filters": 4, "kernel_size": 3, "padding": "same", "name": "c2"},
        {"type": "add", "inputs": ["c1", "c2"]},
        {"type": "maxpool2d", "pool_size": 2, "name": "p"},
        {"type": "conv2d", "filters": 2, "kernel_size": 1, "activation": "tanh"},
        {"type": "concatenate", "inputs": ["p", "input_branch"], "name": "cat"},
        {"type": "global_avgpool2d", "inputs": ["cat"], "name": "g_avg"},
        {"type": "global_maxpool2d", "inputs": ["cat"], "name": "g_max"},
        {"type": "avgpool2d", "pool_size": 7, "inputs": ["cat"]},
        {"type": "flatten", "name": "f"},
        {"type": "dense", "units": 24, "name": "fd"},
        {"type": "add", "inputs": ["f", "fd"], "name": "res"},
        {"type": "concatenate", "inputs": ["g_avg", "g_max", "res"]},
        _dense(1, 10, "softmax"),
    ]
    # the 1x1 conv reads the pool, and the concatenation reads it by name
    layers[4]["name"] = "input_branch"
    layers[4]["inputs"] = ["p"]
    return _spec("vocabulary_graph", DATASETS[0], [28, 28, 1], layers)


def attention_spec() -> ModelSpec:
    """Sequences (the image rows, [28, 28]): self-attention whose heads fill the features
    (torch's packed nn.MultiheadAttention) and whose heads do not (separate projections), with
    and without biases; a post-norm relu and a pre-norm gelu transformer encoder (the second
    with every dropout). Each attention reads an encoder's output: attention layers stacked
    without residuals average the steps into one vector, and a later one's query and key
    kernels then get no gradient."""
    layers: list[dict[str, Any]] = [
        {"type": "transformer_encoder", "num_heads": 2, "key_dim": 14, "mlp_units": 16,
         "epsilon": 0.001},
        {"type": "multihead_attention", "num_heads": 4, "key_dim": 7, "dropout": 0.1,
         "kernel_initializer": _initializer(KERNEL_INITIALIZERS[2]), **_bias(5)},
        {"type": "transformer_encoder", "num_heads": 3, "key_dim": 4, "mlp_units": 12,
         "mlp_activation": "gelu", "norm_first": True, "epsilon": 0.01, "dropout": 0.1},
        {"type": "multihead_attention", "num_heads": 3, "key_dim": 5, "use_bias": False},
        {"type": "flatten"},
        _dense(3, 10, "softmax"),
    ]
    return _spec("vocabulary_attention", DATASETS[0], [28, 28], layers)


def shaping_spec() -> ModelSpec:
    """Layer normalization of an image (over each pixel's channels: torch's NCHW), of a
    sequence and of a flat vector, with center and scale each off once; reshapes from flat to
    image, image to sequence (a -1 inferred) and sequence to image; permutes of an image and
    of a sequence; a positional embedding; and a Flatten read by a layernorm (torch must then
    flatten in Keras' order)."""
    layers: list[dict[str, Any]] = [
        {"type": "reshape", "target_shape": [28, 28, 1]},
        {"type": "conv2d", "filters": 3, "kernel_size": 3, "strides": 2, "activation": "swish"},
        {"type": "layernorm", "epsilon": 0.001, "scale": False},
        {"type": "permute", "dims": [2, 3, 1]},
        {"type": "reshape", "target_shape": [13, -1]},
        {"type": "positional_embedding", "embeddings_initializer": _initializer("normal")},
        {"type": "layernorm", "epsilon": 0.01, "center": False},
        {"type": "permute", "dims": [2, 1]},
        {"type": "reshape", "target_shape": [13, 3, 13]},
        {"type": "flatten"},
        {"type": "layernorm", "epsilon": 0.00001},
        _dense(2, 10, "softmax"),
    ]
    return _spec("vocabulary_shaping", DATASETS[-1], [784], layers)


def _conv_windows(kind: str, first: int, **fields: Any) -> list[dict[str, Any]]:
    """`kind` layers with each padding and each of WINDOW_SHAPES (so every axis meets (even
    kernel, stride 1), (odd, 2), (even, 2) and (odd, 1) with both paddings): four 2-D ones,
    eight conv1d ones (their one axis takes the rows, then the columns); the second without a
    bias. Activations and kernel initializers cycle from `first`."""
    elementwise = [a for a in ACTIVATIONS if a != "softmax"]
    axes = (slice(0, 1), slice(1, 2)) if kind == "conv1d" else (slice(0, 2),)
    layers = []
    for j, (padding, (kernel, strides), axis) in enumerate(itertools.product(
            PADDINGS, WINDOW_SHAPES, axes)):
        init = _initializer(KERNEL_INITIALIZERS[(first + j) % len(KERNEL_INITIALIZERS)])
        layer = {"type": kind, "kernel_size": list(kernel[axis]),
                 "strides": list(strides[axis]), "padding": padding,
                 "activation": elementwise[(first + j) % len(elementwise)], **fields}
        if kind == "separable_conv2d":
            layer |= {"depthwise_initializer": init, "pointwise_initializer": _initializer(
                KERNEL_INITIALIZERS[(first + j + 1) % len(KERNEL_INITIALIZERS)])}
        else:
            layer["depthwise_initializer" if kind == "depthwise_conv2d"
                  else "kernel_initializer"] = init
        layers.append(layer | ({"use_bias": False} if j == 1 else _bias(first + j)))
    return layers


def conv_image_spec() -> ModelSpec:
    """Three branches from the image, joined by global pools and a concatenation: depthwise
    (multiplier 2) and separable convolutions through every padding x stride x kernel parity,
    and conv2d with dilation rates and groups (then dilated depthwise and separable ones)."""
    depthwise = _conv_windows("depthwise_conv2d", 0, depth_multiplier=2)
    separable = _conv_windows("separable_conv2d", 2, filters=3, depth_multiplier=3)
    depthwise[0]["inputs"], separable[0]["inputs"] = ["input"], ["input"]
    depthwise[-1]["name"], separable[-1]["name"] = "dw", "sep"
    layers: list[dict[str, Any]] = [
        *depthwise, *separable,
        {"type": "conv2d", "filters": 4, "kernel_size": 3, "dilation_rate": 2,
         "padding": "same", "activation": "tanh", "inputs": ["input"]},
        {"type": "conv2d", "filters": 6, "kernel_size": [2, 3], "dilation_rate": [1, 3],
         "groups": 2, "activation": "relu", **_bias(5)},
        {"type": "depthwise_conv2d", "kernel_size": 2, "dilation_rate": [2, 1],
         "padding": "same", "activation": "elu"},
        {"type": "separable_conv2d", "filters": 4, "kernel_size": 3, "dilation_rate": 2,
         "padding": "same", "activation": "selu", "name": "dil"},
        {"type": "global_maxpool2d", "inputs": ["dw"], "name": "g_dw"},
        {"type": "global_avgpool2d", "inputs": ["sep"], "name": "g_sep"},
        {"type": "global_avgpool2d", "inputs": ["dil"], "name": "g_dil"},
        {"type": "concatenate", "inputs": ["g_dw", "g_sep", "g_dil"]},
        _dense(2, 10, "softmax"),
    ]
    return _spec("vocabulary_conv_image", DATASETS[0], [28, 28, 1], layers)


def conv_sequence_spec() -> ModelSpec:
    """conv1d over the rows of the image (a sequence of 28 steps) through every padding x
    stride x kernel parity (the 'valid' and the 'same' ones in two branches, so that the steps
    last), then causal (dilated, and strided) ones; both global 1-D pools."""
    windows = _conv_windows("conv1d", 3, filters=6)
    windows[0]["inputs"], windows[4]["inputs"] = ["input"], ["input"]
    windows[3]["name"] = "valid"
    layers: list[dict[str, Any]] = [
        *windows,
        {"type": "conv1d", "filters": 5, "kernel_size": 2, "dilation_rate": 2,
         "padding": "causal", "activation": "tanh"},
        {"type": "conv1d", "filters": 4, "kernel_size": 3, "strides": 2, "padding": "causal",
         "name": "causal"},
        {"type": "global_avgpool1d", "inputs": ["valid"], "name": "avg"},
        {"type": "global_maxpool1d", "inputs": ["causal"], "name": "max"},
        {"type": "concatenate", "inputs": ["avg", "max"]},
        _dense(4, 10, "softmax"),
    ]
    return _spec("vocabulary_conv_sequence", DATASETS[-1], [28, 28], layers)


def recurrent_spec() -> ModelSpec:
    """LSTMs and GRUs on the image rows (a [28, 28] input), every switch both ways: sequences
    into sequences, GRUs with and without reset_after, with and without biases (an orthogonal
    one: a reset_after GRU's bias is a matrix), branches joined by a concatenation. Kernels
    and recurrent kernels cycle through every random initializer."""
    kernels = itertools.cycle(KERNEL_INITIALIZERS)

    def rnn(kind: str, units: int, **extra: Any) -> dict[str, Any]:
        return {"type": kind, "units": units, "kernel_initializer": _initializer(next(kernels)),
                "recurrent_initializer": _initializer(next(kernels)), **extra}

    layers: list[dict[str, Any]] = [
        rnn("lstm", 6, return_sequences=True, name="a", **_bias(0)),
        rnn("gru", 5, return_sequences=True, reset_after=False, **_bias(1)),
        rnn("lstm", 4, use_bias=False, name="l"),
        rnn("gru", 4, inputs=["a"], use_bias=False, return_sequences=True),
        rnn("gru", 3, bias_initializer=_initializer("orthogonal"), name="g"),
        rnn("lstm", 3, unit_forget_bias=False, inputs=["input"], name="l2", **_bias(2)),
        {"type": "concatenate", "inputs": ["l", "g", "l2"]},
        _dense(2, 10, "softmax"),
    ]
    return _spec("vocabulary_recurrent", DATASETS[-1], [28, 28], layers)


def vocabulary_specs() -> list[ModelSpec]:
    return [mlp_spec(), *(windows_spec(v) for v in range(len(PADDINGS))), graph_spec(),
            attention_spec(), shaping_spec(),
            conv_image_spec(), conv_sequence_spec(), recurrent_spec()]
