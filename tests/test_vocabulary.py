"""Every word of the spec language works in every stage.

The vocabulary is read from the schema itself (`harness/spec/layers.py`, `schema.py`): each
activation, initializer, layer type, dataset, optimizer, boolean switch, padding x stride x
kernel parity of every window layer, and the BatchNorm and Dropout placements. A few small specs
speak it all; each goes through every backend (same weights -> same outputs), every ONNX export
(checker, then ONNX Runtime against the native model) and one training step in each backend.
A word added to the schema fails `test_the_specs_speak_the_whole_vocabulary` until a spec here
uses it, so a value the schema accepts either works end to end or is rejected at load (or, by
a backend that would compute another function, at build: Keras on PyTorch's asymmetric 'same'
average pools).
"""

from __future__ import annotations

import itertools
import re
import tempfile
from functools import cache
from pathlib import Path
from typing import Any, get_args

import numpy as np
import pytest
import yaml

from harness.spec import ModelSpec, infer, initial_weights, parse_spec
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
DATASETS: tuple[str, ...] = get_args(S.InputSpec.model_fields["dataset"].annotation)
INITIALIZERS = {_tag(cls, "name"): cls for cls in _members(L.Initializer)}
LAYER_TYPES = {_tag(cls, "type"): cls for cls in _members(L.Layer)}
OPTIMIZERS = {_tag(cls, "name"): cls for cls in _members(S.Optimizer)}
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
}
# Each window layer twice per spec, with a different axis strided each time: over the two
# shapes every axis meets (even kernel, stride 1), (odd, 2), (even, 2) and (odd, 1).
WINDOW_SHAPES = (((2, 3), (1, 2)), ((2, 3), (2, 1)))
# The window layers conv_image_spec() and conv_sequence_spec() speak (windows_spec the others)
CONV_WINDOWS = ("depthwise_conv2d", "separable_conv2d", "conv1d")
PLACEMENTS = ("first layer", "after conv2d", "after a pool", "after flatten", "after dense",
              "before activation")


def _bool_fields(cls: type[L.StrictModel]) -> list[str]:
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
          optimizer: dict[str, Any] | None = None) -> ModelSpec:
    """Through YAML and the loader, as a user's file goes."""
    optimizer = optimizer or {"name": "sgd", **HYPERPARAMETERS["sgd"], "nesterov": False}
    data = {"name": name, "input": {"dataset": dataset, "shape": shape}, "layers": layers,
            "train": {"optimizer": optimizer, "batch_size": N_IMAGES, "epochs": 1}}
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
        switches = _bool_fields(cls)
        for values in itertools.product((False, True), repeat=len(switches)):
            chosen = dict(zip(switches, values, strict=True))
            label = "-".join([name, *(f"{s}={v}" for s, v in chosen.items())])
            cases[label] = {"name": name, **HYPERPARAMETERS.get(name, {}), **chosen}
    return cases


def optimizer_spec(label: str) -> ModelSpec:
    """Dropout- and BatchNorm-free and small: both backends' trained weights must agree."""
    layers = [{"type": "dense", "units": 8, "activation": "tanh"},
              {"type": "dense", "units": 10, "activation": "softmax"}]
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


# --------------------------------------------------------------------------- the words


def _placements(spec: ModelSpec, index: int) -> set[str]:
    before = spec.layers[index - 1].type if index else None
    after = spec.layers[index + 1].type if index + 1 < len(spec.layers) else None
    return {label for label, hit in (
        ("first layer", before is None), ("after conv2d", before == "conv2d"),
        ("after a pool", before in ("maxpool2d", "avgpool2d")),
        ("after flatten", before == "flatten"), ("after dense", before == "dense"),
        ("before activation", after == "activation")) if hit}


def _words(specs: list[ModelSpec]) -> dict[str, set[Any]]:
    """What the specs say: every word, by where it is said."""
    words: dict[str, set[Any]] = {key: set() for key in (
        "activation", "activation layer", "kernel_initializer", "bias_initializer",
        "layer type", "last layer", "dataset", "switch", "window", "batchnorm", "dropout",
        "merge")}
    for spec in specs:
        words["dataset"].add(spec.input.dataset)
        words["last layer"].add(spec.layers[-1].type)
        for index, info in enumerate(infer(spec).layers):
            layer = info.layer
            words["layer type"].add(layer.type)
            if type(layer).arity != (1, 1):
                words["merge"].add((layer.type, "image" if len(info.input_shape) == 3
                                    else "flat"))
            words["switch"].update((layer.type, f, getattr(layer, f)) for f in _bool_fields(
                type(layer)))
            if layer.type in ("batchnorm", "dropout"):
                words[layer.type].update(_placements(spec, index))
            if isinstance(layer, L.ActivationLayer):
                words["activation layer"].add(layer.activation)
            elif isinstance(layer, (L.Dense, L.Conv2D)):
                words["activation"].add(layer.activation)
            if isinstance(layer, (L.Dense, L.Conv2D)):
                words["kernel_initializer"].add(layer.kernel_initializer.name)
                if layer.use_bias:
                    words["bias_initializer"].add(layer.bias_initializer.name)
            if isinstance(layer, (L.LSTM, L.GRU)):
                words["kernel_initializer"].update((layer.kernel_initializer.name,
                                                    layer.recurrent_initializer.name))
                if layer.use_bias:
                    words["bias_initializer"].add(layer.bias_initializer.name)
            if layer.type in WINDOW_TYPES:
                kernel = getattr(layer, "kernel_size", None) or layer.pool_size
                strides = getattr(layer, "resolved_strides", None) or layer.strides
                words["window"].update((layer.type, layer.padding, k % 2 == 0, s)
                                       for k, s in zip(kernel, strides, strict=True))
    return words


def test_the_schema_tuples_match_its_literals() -> None:
    """The tuples the rest of the harness uses (CLI, sweeps) are the schema's words."""
    assert L.ACTIVATIONS == ACTIVATIONS
    assert set(L.LAYER_TYPES) == set(LAYER_TYPES)
    assert set(S.OPTIMIZERS) == set(OPTIMIZERS)
    assert set(S.DATASETS) == set(DATASETS)


def test_the_specs_speak_the_whole_vocabulary() -> None:
    assert set(HYPERPARAMETERS) == set(OPTIMIZERS), "give every optimizer its hyperparameters"
    words = _words(vocabulary_specs())
    assert words["activation"] | words["activation layer"] == set(ACTIVATIONS)
    assert words["bias_initializer"] == set(INITIALIZERS)
    assert set(KERNEL_INITIALIZERS) <= words["kernel_initializer"]
    assert words["layer type"] == set(LAYER_TYPES)
    assert words["last layer"] == {"dense", "activation"}  # the types that can end a model
    assert words["dataset"] == set(DATASETS)
    assert words["switch"] == {(kind, field, value) for kind, cls in LAYER_TYPES.items()
                               for field in _bool_fields(cls) for value in (False, True)}
    assert set(itertools.product(WINDOW_TYPES, PADDINGS, (False, True), (1, 2))) \
        <= words["window"]
    merges = [name for name, cls in LAYER_TYPES.items() if cls.arity != (1, 1)]
    assert words["merge"] == set(itertools.product(merges, ("image", "flat")))
    assert words["batchnorm"] == words["dropout"] == set(PLACEMENTS)
    assert {case["name"] for case in optimizer_cases().values()} == set(OPTIMIZERS)


# --------------------------------------------------------------------------- every stage


@pytest.fixture(scope="module")
def backends() -> list[str]:
    """Every installed backend; each runs where it can (`backend_call`: a worker process for a
    Keras backend this process cannot hold)."""
    for module in ("torch", "tensorflow", "onnx", "onnxruntime"):
        pytest.importorskip(module)
    from harness.backends import backend_names, not_installed

    return [name for name in backend_names() if not not_installed(name)]


@cache
def _backend(name: str) -> Any:
    """One backend object per process (this one, or a backend's worker)."""
    from harness.backends import get_backend

    return get_backend(name)


def _with_statistics(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """BatchNorm parameters and moving statistics away from (1, 0, 0, 1), so that they count
    (the specs' biases are already random)."""
    rng = np.random.default_rng(1)
    out = dict(weights)
    for key, value in weights.items():
        if key.endswith((".beta", ".moving_mean")):
            out[key] = rng.normal(0.0, 0.2, value.shape).astype(np.float32)
        elif key.endswith((".gamma", ".moving_variance")):
            out[key] = rng.uniform(0.5, 1.5, value.shape).astype(np.float32)
    return out


def every_stage(name: str, spec: ModelSpec, weights: dict[str, np.ndarray], arrays: Any,
                folder: Path) -> dict[str, Any]:
    """One backend through every stage: parameter counts, outputs, the ONNX export (checker,
    ONNX Runtime against the native model) and one training step."""
    from harness.backends.onnx_io import DEFAULT_OPSET
    from harness.export.driver import convert_to_onnx, onnx_parity

    backend = _backend(name)
    model = backend.build(spec)
    counts = backend.count_params(model)
    backend.set_weights(model, weights)
    probabilities = backend.predict(model, arrays.x_test)
    path = folder / f"{spec.name}.{name}.onnx"
    nodes = convert_to_onnx(backend, model, spec, path, DEFAULT_OPSET)["nodes"]
    parity = onnx_parity(backend, model, path, arrays.x_test, arrays.y_test)
    result = backend.train_epoch(model, backend.to_native(arrays.x_train, arrays.y_train),
                                 np.arange(N_IMAGES), N_IMAGES)
    return {"counts": counts, "probabilities": probabilities, "nodes": nodes, "parity": parity,
            "loss": result.loss, "trained": backend.get_weights(model)}


def _refusals(spec: ModelSpec, backends: list[str]) -> dict[str, str]:
    """The backends that must refuse `spec`, and a word of their reason: Keras on PyTorch
    where it would compute another function (harness.backends.keras_common), or cannot export
    a GRU without reset_after (harness.backends.keras_torch.exporter; its function is checked
    in tests/backends/test_recurrent_layers.py)."""
    from harness.backends.keras_common import differs_on_torch

    if "keras-torch" in backends and any(isinstance(layer, L.GRU) and not layer.reset_after
                                         for layer in spec.layers):
        return {"keras-torch": "(gru, reset_after false) to ONNX"}  # its export refuses
    return ({"keras-torch": "computes the last row or column"}
            if "keras-torch" in backends and differs_on_torch(spec) else {})


@pytest.mark.parametrize("spec", vocabulary_specs(), ids=lambda spec: spec.name)
def test_every_word_works_in_every_stage(spec: ModelSpec, backends: list[str], backend_call: Any,
                                         tmp_path: Path) -> None:
    """Every backend, every ONNX export (checker, ONNX Runtime), one training step each; a
    backend that cannot build the spec faithfully refuses it, saying why."""
    from harness.backends import BackendUnavailable
    from harness.data import load_arrays
    from harness.export.driver import ExportError  # an export refused (its reason in one line)

    arrays = load_arrays(spec.input, limit=N_IMAGES, limit_test=N_IMAGES)
    summary = infer(spec)
    weights = _with_statistics(initial_weights(spec))
    refusals = _refusals(spec, backends)
    probabilities = {}
    for name in backends:
        try:
            stage = backend_call(name, every_stage, name, spec, weights, arrays, tmp_path)
        except (BackendUnavailable, ExportError) as exc:
            assert refusals.pop(name, "(none expected)") in str(exc), exc
            continue
        assert stage["counts"] == (summary.trainable_params, summary.non_trainable_params)
        probabilities[name] = stage["probabilities"]
        assert stage["nodes"] > 0
        parity = stage["parity"]
        worst = max(parity["max_abs_diff"], *parity["batch_max_abs_diff"].values())
        assert worst <= TOLERANCE, f"{name} native vs ONNX Runtime: {parity}"
        trained = stage["trained"]
        assert np.isfinite(stage["loss"]), name
        assert all(np.isfinite(trained[key]).all() for key in trained), name
        # biases and BN offsets are left out: one that reaches a BatchNorm through linear
        # layers only (vocabulary_windows_0's input BN, a linear conv, then a BN) rightly gets a
        # zero gradient, and whether rounding leaves it exactly unchanged is chance
        unmoved = [key for key in weights if not key.endswith((".bias", ".beta"))
                   and np.array_equal(trained[key], weights[key])]
        assert not unmoved, f"{name}: one training step left {unmoved} unchanged"
    assert not refusals, f"expected refusals did not happen: {refusals}"
    reference, *others = probabilities
    for name in others:
        np.testing.assert_allclose(probabilities[name], probabilities[reference], rtol=0,
                                   atol=TOLERANCE, err_msg=f"{name} vs {reference}")


def two_steps(name: str, spec: ModelSpec, arrays: Any) -> tuple[float, dict[str, np.ndarray]]:
    """Two steps (so the optimizer's state counts) from the spec's initial weights."""
    backend = _backend(name)
    model = backend.build(spec)
    backend.set_weights(model, initial_weights(spec))
    loss = backend.train_epoch(model, backend.to_native(arrays.x_train, arrays.y_train),
                               np.arange(N_IMAGES), N_IMAGES // 2).loss
    return loss, backend.get_weights(model)


@pytest.mark.parametrize("label", list(optimizer_cases()))
def test_every_optimizer_trains_alike(label: str, backends: list[str],
                                      backend_call: Any) -> None:
    """Two steps from the same start, on the same batches, in every backend."""
    from harness.data import load_arrays

    spec = optimizer_spec(label)
    arrays = load_arrays(spec.input, limit=N_IMAGES, limit_test=1)
    start = initial_weights(spec)
    losses, trained = {}, {}
    for name in backends:
        losses[name], trained[name] = backend_call(name, two_steps, name, spec, arrays)
    reference, *others = backends
    assert not np.allclose(trained[reference]["0.kernel"], start["0.kernel"])
    for name in others:
        assert losses[name] == pytest.approx(losses[reference], rel=1e-5)
        for key, value in trained[reference].items():
            np.testing.assert_allclose(trained[name][key], value, rtol=1e-5, atol=2e-6,
                                       err_msg=f"{label}: {name} vs {reference}: {key}")


# --------------------------------------------------------------------------- gelu, end to end

GELU_SPEC = """\
name: my_gelu
input: {shape: [784]}
layers:
  - {type: dense, units: 8, activation: gelu, bias_initializer: he_normal}
  - {type: dense, units: 10, activation: softmax}
train:
  optimizer: {name: sgd, learning_rate: 0.1, momentum: 0.0, nesterov: false}
  batch_size: 32
  epochs: 1
"""


@pytest.fixture
def gelu_spec(tmp_path: Path, backends: list[str]) -> Path:
    path = tmp_path / "my_gelu.yaml"
    path.write_text(GELU_SPEC)
    return path


def test_harness_parity_on_a_users_gelu_spec(gelu_spec: Path, backends: list[str],
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """tf2onnx writes Keras' exact gelu with Erfc, which ONNX lacks; the export rewrites it."""
    from harness.cli import main

    assert main(["parity", "--spec", str(gelu_spec), "--limit-test", "50", "--backends",
                 ",".join(backends)]) == 0
    out = capsys.readouterr().out
    assert "keras onnx" in out and "torch onnx" in out and "FAIL" not in out
    differences = [float(d) for d in re.findall(r"(\S+) vs keras native", out)]
    # native and ONNX of every backend (a Keras backend after the first in a worker process)
    assert len(differences) == 2 * len(backends) and max(differences) <= TOLERANCE


def test_a_file_that_fails_the_onnx_checks_is_one_error_line_with_a_log(
        gelu_spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Without its Erfc handler tf2onnx copies the op through unconverted (as it does any op it
    cannot convert); `export` and `parity` then stop with one line, the checker's text in a log."""
    from harness.backends.keras_tf import exporter
    from harness.cli import main

    monkeypatch.setattr(exporter, "_OP_HANDLERS", {})
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where parity keeps its log
    out = tmp_path / "my_gelu.keras.onnx"
    assert main(["export", "--backend", "keras", "--spec", str(gelu_spec), "--out", str(out),
                 "--limit-test", "50"]) == 1
    assert main(["parity", "--spec", str(gelu_spec), "--limit-test", "50"]) == 1
    errors = " ".join(capsys.readouterr().err.split())  # however the console wraps
    assert "Traceback" not in errors and "OnnxCheckError" in errors
    logs = [out.with_name(out.name + ".log"), tmp_path / "harness-parity-my_gelu.keras.onnx.log"]
    for log in logs:
        assert errors.count(str(log)) == 1
        assert "Erfc" in log.read_text()
    assert errors.count("spec 'my_gelu' with backend 'keras'") == 2
    assert errors.count("fails the ONNX checks") == 2
    assert not out.exists()
