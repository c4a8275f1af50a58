"""Layer normalization, reshape, permute, the positional embedding and the gelu_tanh / swish
activations: one-line spec errors, the same function in Keras and PyTorch, the same training
steps in float64, a saved Keras model that loads back, and a negative control for each trap
(the other framework's epsilon, the other GELU, a reshape of NCHW memory, a Flatten left in
torch's order). Every Keras backend and every ONNX export: tests/test_vocabulary.py's
shaping_spec."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, get_args

import numpy as np
import pytest
import yaml

torch = pytest.importorskip("torch")
pytest.importorskip("keras")

from torch import nn  # noqa: E402

from harness.backends import Backend, get_backend  # noqa: E402
from harness.data import load_arrays  # noqa: E402
from harness.spec import ModelSpec, SpecError, initial_weights, parse_spec  # noqa: E402
from harness.spec import layers as L  # noqa: E402
from harness.spec.initializers import Weights  # noqa: E402

TOLERANCE = 1e-5
SGD = {"name": "sgd", "learning_rate": 0.125, "momentum": 0.0, "nesterov": False}
SOFTMAX = {"type": "dense", "units": 10, "activation": "softmax"}


def _spec(layers: list[dict[str, Any]], shape: list[int] | None = None,
          optimizer: dict[str, Any] | None = None) -> ModelSpec:
    return parse_spec(yaml.safe_dump({
        "name": "shaping", "input": {"shape": shape or [784]}, "layers": layers,
        "train": {"optimizer": optimizer or SGD, "batch_size": 32, "epochs": 1}}),
        source="net.yaml")


def _scrambled(weights: Weights) -> Weights:
    """Biases, betas and gammas away from 0 and 1, so that each array counts."""
    rng = np.random.default_rng(1)
    out = dict(weights)
    for key, value in weights.items():
        if key.endswith((".bias", ".beta")):
            out[key] = rng.normal(0.0, 0.2, value.shape).astype(np.float32)
        elif key.endswith(".gamma"):
            out[key] = rng.uniform(0.5, 1.5, value.shape).astype(np.float32)
    return out


def _gap(keras_backend: Backend, torch_backend: Backend, spec: ModelSpec,
         torch_spec: ModelSpec | None = None) -> float:
    """Max |probability difference| of Keras built from `spec` and torch from `torch_spec`
    (default: the same spec), from the same weights on 32 test images."""
    weights = _scrambled(initial_weights(spec))
    x = load_arrays(spec.input, limit=32, limit_test=32).x_test
    keras_model, torch_model = keras_backend.build(spec), torch_backend.build(torch_spec or spec)
    keras_backend.set_weights(keras_model, weights)
    torch_backend.set_weights(torch_model, weights)
    return float(np.abs(keras_backend.predict(keras_model, x)
                        - torch_backend.predict(torch_model, x)).max())


# --------------------------------------------------------------------------- spec errors


@pytest.mark.parametrize(("layer", "shape", "expected"), [
    ({"type": "reshape", "target_shape": [5, -1]}, [784],
     "layers[0].target_shape: cannot reshape (784,) (784 elements) to [5, -1]"),
    ({"type": "reshape", "target_shape": [28, 27]}, [784], "cannot reshape (784,)"),
    ({"type": "reshape", "target_shape": [-1, -1]}, [784],
     "layers[0].target_shape: at most one dimension may be -1"),
    ({"type": "reshape", "target_shape": [0, 784]}, [784],
     "layers[0].target_shape: dimensions must be positive, or -1"),
    ({"type": "reshape", "target_shape": [1, 1, 1, 784]}, [784],
     "layers[0].target_shape: tuple should have at most 3 items"),
    ({"type": "permute", "dims": [1, 1]}, [28, 28],
     "layers[0].dims: must be a permutation of 1..2"),
    ({"type": "permute", "dims": [0, 1]}, [28, 28],
     "layers[0].dims: must be a permutation of 1..2"),
    ({"type": "permute", "dims": [2, 1]}, [784],
     "layers[0].dims: [2, 1] orders 2 axes; the input (784,) has 1"),
    ({"type": "layernorm"}, [784], "layers[0].epsilon: required field is missing"),
    ({"type": "layernorm", "epsilon": 0}, [784], "layers[0].epsilon: input should be greater"),
    ({"type": "layernorm", "epsilon": 0.001, "center": "yes"}, [784], "layers[0].center"),
    ({"type": "positional_embedding"}, [784],
     "layers[0].type: positional_embedding needs a sequence (steps, features)"),
    ({"type": "positional_embedding"}, [28, 28, 1],
     "layers[0].type: positional_embedding needs a sequence"),
    ({"type": "positional_embedding", "embeddings_initializer": "he_normall"}, [28, 28],
     "layers[0].embeddings_initializer"),
    ({"type": "activation", "activation": "silu"}, [784], "'gelu_tanh', 'swish'], got 'silu'"),
])
def test_shaping_mistakes_are_one_line_each(layer: dict[str, Any], shape: list[int],
                                            expected: str) -> None:
    with pytest.raises(SpecError) as caught:
        _spec([layer, {"type": "flatten"}, SOFTMAX], shape)
    lines = str(caught.value).splitlines()
    assert any(expected in line for line in lines), lines
    assert all(line.startswith("net.yaml: layers[0].") for line in lines), lines


def test_shapes_and_weights_are_keras() -> None:
    """A -1 is inferred; permute numbers axes from 1; gamma comes before beta, each only when
    switched on; the embedding is (steps, features)."""
    from harness.spec import infer

    spec = _spec([{"type": "reshape", "target_shape": [-1, 7, 4]},
                  {"type": "permute", "dims": [3, 1, 2]},
                  {"type": "reshape", "target_shape": [112, -1]},
                  {"type": "positional_embedding"},
                  {"type": "layernorm", "epsilon": 0.001},
                  {"type": "layernorm", "epsilon": 0.001, "scale": False},
                  {"type": "layernorm", "epsilon": 0.001, "center": False},
                  {"type": "flatten"}, SOFTMAX])
    layers = infer(spec).layers
    assert [info.output_shape for info in layers[:3]] == [(28, 7, 4), (4, 28, 7), (112, 7)]
    assert [(w.name, w.shape) for w in layers[3].weights] == [("embeddings", (112, 7))]
    assert [[w.name for w in info.weights] for info in layers[4:7]] == [
        ["gamma", "beta"], ["beta"], ["gamma"]]


# --------------------------------------------------------------------------- the traps


def _layernorm_spec(epsilon: float) -> ModelSpec:
    """Tiny dense weights: the layernorm's input varies by ~1e-4, where epsilon counts."""
    return _spec([{"type": "dense", "units": 16, "kernel_initializer":
                   {"name": "normal", "stddev": 0.001}, "bias_initializer": "zeros"},
                  {"type": "layernorm", "epsilon": epsilon}, SOFTMAX])


@pytest.mark.parametrize("torch_epsilon", [0.001, 0.00001], ids=["as-built", "torch-default"])
def test_layernorm_epsilon_is_the_specs(torch_epsilon: float, keras_backend: Backend,
                                        torch_backend: Backend) -> None:
    """Keras' default epsilon is 1e-3, PyTorch's 1e-5. Negative control: torch built with its
    own default (the spec saying Keras') gives other probabilities."""
    gap = _gap(keras_backend, torch_backend, _layernorm_spec(0.001),
               _layernorm_spec(torch_epsilon))
    if torch_epsilon == 0.001:
        assert gap <= TOLERANCE
    else:
        assert gap > 1e-3


def _gelu_spec(activation: str) -> ModelSpec:
    """Pre-activations spread over about +-3, where the two GELUs differ by up to ~5e-4."""
    return _spec([{"type": "dense", "units": 32, "activation": activation,
                   "kernel_initializer": {"name": "normal", "stddev": 0.2}}, SOFTMAX])


@pytest.mark.parametrize(("keras_word", "torch_word"),
                         list(itertools.product(("gelu", "gelu_tanh"), repeat=2)))
def test_gelu_and_gelu_tanh_are_not_confused(keras_word: str, torch_word: str,
                                             keras_backend: Backend,
                                             torch_backend: Backend) -> None:
    """`gelu` is the exact (erf) GELU and `gelu_tanh` its tanh approximation in both
    frameworks. Negative control: either word in Keras against the other in torch fails."""
    gap = _gap(keras_backend, torch_backend, _gelu_spec(keras_word), _gelu_spec(torch_word))
    if keras_word == torch_word:
        assert gap <= TOLERANCE
    else:
        assert gap > 10 * TOLERANCE


class NchwReshape(nn.Module):
    """The wrong torch reshape: the NCHW tensor as it lies, not in channels-last order."""

    def __init__(self, target: tuple[int, ...]) -> None:
        super().__init__()
        self.target = target

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(-1, *self.target)
        return x.permute(0, 3, 1, 2) if len(self.target) == 3 else x


@pytest.mark.parametrize("naive", [False, True], ids=["as-built", "nchw-reshape"])
def test_reshape_reads_an_image_in_channels_last_order(
        naive: bool, keras_backend: Backend, torch_backend: Backend,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An image reshaped to an image, and an image to a sequence. Negative control: reshaping
    torch's NCHW tensor directly (its memory order) gives other probabilities."""
    from harness.backends.pytorch import layers as torch_layers
    from harness.backends.pytorch.layers.base import TorchLayer

    if naive:
        monkeypatch.setitem(torch_layers.BUILDERS, L.Reshape, lambda info, ctx: TorchLayer(
            [("reshape", NchwReshape(info.output_shape))]))
    spec = _spec([{"type": "conv2d", "filters": 3, "kernel_size": 3, "padding": "same",
                   "activation": "tanh"},
                  {"type": "reshape", "target_shape": [14, 56, 3]},
                  {"type": "conv2d", "filters": 2, "kernel_size": 1},
                  {"type": "reshape", "target_shape": [-1, 8]},
                  {"type": "flatten"}, SOFTMAX], [28, 28, 1])
    gap = _gap(keras_backend, torch_backend, spec)
    assert gap > 1e-3 if naive else gap <= TOLERANCE


READERS = {
    "layernorm": [{"type": "layernorm", "epsilon": 0.001}],
    "reshape": [{"type": "reshape", "target_shape": [4, 12]}, {"type": "permute", "dims": [2, 1]},
                {"type": "flatten"}],
}


@pytest.mark.parametrize("keras_order", [True, False], ids=["as-built", "torch-order"])
@pytest.mark.parametrize("reader", list(READERS))
def test_a_flatten_read_by_a_shaping_layer_is_in_keras_order(
        reader: str, keras_order: bool, keras_backend: Backend, torch_backend: Backend,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A layernorm (per-feature gamma and beta) or a reshape reading a flattened image cannot
    absorb torch's (C, H, W) order: the Flatten makes Keras' order itself. Negative control:
    the Flatten left in torch's order gives other probabilities."""
    from harness.backends.pytorch import builder

    spec = _spec([{"type": "conv2d", "filters": 3, "kernel_size": 5, "strides": 3,
                   "activation": "relu"}, {"type": "maxpool2d", "pool_size": 2},
                  {"type": "flatten"}, *READERS[reader], SOFTMAX], [28, 28, 1])
    assert builder.flat_feature_orders(spec)[1] == {2}
    if not keras_order:
        orders = builder.flat_feature_orders
        monkeypatch.setattr(builder, "flat_feature_orders", lambda s: (orders(s)[0], set()))
    gap = _gap(keras_backend, torch_backend, spec)
    assert gap <= TOLERANCE if keras_order else gap > 1e-3


def test_torch_permutation_is_keras_permute_on_nchw() -> None:
    """Every permutation of an image's axes, composed with torch's NCHW layout, against
    numpy on the channels-last array."""
    from harness.backends.pytorch.layers.shaping import torch_permutation

    hwc = np.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5)
    for dims in itertools.permutations((1, 2, 3)):
        nchw = torch.from_numpy(hwc).permute(0, 3, 1, 2)
        out = nchw.permute(*torch_permutation(dims)).permute(0, 2, 3, 1).numpy()
        np.testing.assert_array_equal(out, hwc.transpose(0, *dims), err_msg=str(dims))


# --------------------------------------------------------------------------- training, saving

# SGD, whose update is proportional to the gradient: Adam would scale up the near-zero
# gradient of the conv bias under a per-pixel layernorm (which removes most of it), and with
# it the rounding that is all that is left of it
MOMENTUM = {"name": "sgd", "learning_rate": 0.0625, "momentum": 0.875, "nesterov": False}
TRAIN_LAYERS: list[dict[str, Any]] = [
    {"type": "positional_embedding", "embeddings_initializer": {"name": "normal",
                                                                "stddev": 0.25}},
    {"type": "layernorm", "epsilon": 0.0078125, "center": False},
    {"type": "permute", "dims": [2, 1]},
    {"type": "reshape", "target_shape": [28, 28, 1]},
    # no bias: the layernorm after it removes most of it, leaving its gradient to rounding
    {"type": "conv2d", "filters": 4, "kernel_size": 4, "strides": 3, "activation": "tanh",
     "use_bias": False},
    {"type": "layernorm", "epsilon": 0.0078125, "scale": False},
    {"type": "reshape", "target_shape": [-1]},
    {"type": "dense", "units": 16, "activation": "gelu_tanh"},
    {"type": "layernorm", "epsilon": 0.0009765625},
    {"type": "dense", "units": 16, "activation": "swish"},
    SOFTMAX,
]


# Float64 rounding amplified 1e8-fold: relative to each array's largest value (entries that
# training brings near zero keep the rounding of their larger terms). Three layer
# normalizations, each dividing by up to 1 / sqrt(epsilon) = 11, amplify rounding more than
# test_parity's specs do: the worst seen here was 2.7e-9. Still 5 times below one float32
# rounding (1.2e-7), and 2500 times below the effect of a 0.1% change of one epsilon (the
# negative control below).
TRAIN_RTOL = 1e8 * float(np.finfo(np.float64).eps)  # 2.2e-8


def _train_both(torch_layers: list[dict[str, Any]]) -> tuple[Weights, dict[str, Weights]]:
    """4 SGD steps (momentum) in float64 from the same start on the same batches: the start
    and each backend's weights (torch built from `torch_layers`)."""
    specs = {"keras": _spec(TRAIN_LAYERS, [28, 28], MOMENTUM),
             "torch": _spec(torch_layers, [28, 28], MOMENTUM)}
    arrays = load_arrays(specs["keras"].input, limit=128, limit_test=8)
    order = np.random.default_rng(0).permutation(128)
    start = initial_weights(specs["keras"])
    final = {}
    for name, spec in specs.items():
        backend = get_backend(name, dtype="float64")
        model = backend.build(spec)
        backend.set_weights(model, start)
        backend.train_epoch(model, backend.to_native(arrays.x_train, arrays.y_train), order, 32)
        final[name] = backend.get_weights(model)
    return start, final


def _worst(final: dict[str, Weights]) -> tuple[float, str]:
    """The largest |torch - keras| over TRAIN_RTOL times its array's largest value."""
    ratios = {key: float(np.abs(final["torch"][key] - value).max()
                         / (TRAIN_RTOL * np.abs(value).max()))
              for key, value in final["keras"].items()}
    key = max(ratios, key=ratios.__getitem__)
    return ratios[key], key


def test_same_training_steps_give_same_weights() -> None:
    """Every array of the shaping layers (embeddings, gammas, betas) and the rest trains to
    the same values in both backends."""
    start, final = _train_both(TRAIN_LAYERS)
    for key in start:
        assert not np.allclose(final["keras"][key], start[key]), f"{key} did not train"
    worst, key = _worst(final)
    assert worst <= 1.0, f"{key}: {worst:.3g} times the tolerance"


def test_the_training_check_detects_a_slightly_other_epsilon() -> None:
    """Negative control: torch's image layernorm with epsilon 0.1% larger fails the check."""
    layers = [dict(layer) for layer in TRAIN_LAYERS]
    layers[5]["epsilon"] = 0.0078125 * 1.001
    _, final = _train_both(layers)
    assert _worst(final)[0] > 100.0


def test_a_saved_keras_model_loads_back(keras_backend: Backend, tmp_path: Path) -> None:
    """The custom positional-embedding layer and the gelu_tanh function are registered: a
    .keras file loads back with its spec initializer named, and computes the same."""
    import keras

    spec = _spec([*TRAIN_LAYERS[:-1], {"type": "activation", "activation": "gelu_tanh"},
                  SOFTMAX], [28, 28])
    model = keras_backend.build(spec)
    keras_backend.set_weights(model, _scrambled(initial_weights(spec)))
    x = load_arrays(spec.input, limit=8, limit_test=8).x_test
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    embedding = loaded.get_layer("l0_positional_embedding")
    assert embedding.get_config()["embeddings_initializer"]["config"]["stddev"] == 0.25
    assert loaded.get_layer("l7_dense").get_config()["activation"]["config"] == \
        "harness>gelu_tanh"


def _initializer_cases() -> list[L.Initializer]:
    arguments = {"value": 0.3, "stddev": 0.5, "mean": 0.25, "minval": -0.5, "maxval": 0.5}
    members = get_args(get_args(L.Initializer)[0])
    return [cls.model_validate({"name": get_args(cls.model_fields["name"].annotation)[0],
                                **{k: v for k, v in arguments.items() if k in cls.model_fields}})
            for cls in members]


@pytest.mark.parametrize("init", _initializer_cases(), ids=lambda init: init.name)
def test_the_built_embedding_names_its_spec_initializer(
        init: L.Initializer, keras_backend: Backend) -> None:
    """The Keras layer's config (and a saved model) names the spec's initializer, as a
    kernel's does; the numbers are the spec's numpy draw."""
    from harness.backends.keras_common.builder import make_initializer

    spec = _spec([{"type": "reshape", "target_shape": [28, 28]},
                  {"type": "positional_embedding",
                   "embeddings_initializer": init.model_dump()},
                  {"type": "flatten"}, SOFTMAX])
    named = keras_backend.build(spec).layers[1].embeddings_initializer
    expected = make_initializer(init)
    assert type(named) is type(expected) and named.get_config() == expected.get_config()


@pytest.mark.parametrize("layout", ["channels_last", "nchw"])
def test_a_flat_input_reshaped_to_an_image_runs_in_either_layout(
        layout: str, keras_backend: Backend) -> None:
    """The torch backend lays out a CNN's input image in its memory layout; a flat input that
    a reshape makes an image is left as it is (it is no image yet), in either layout."""
    from harness.backends.pytorch.backend import TorchBackend

    spec = _spec([{"type": "reshape", "target_shape": [28, 28, 1]},
                  {"type": "conv2d", "filters": 3, "kernel_size": 3, "strides": 2},
                  {"type": "flatten"}, SOFTMAX])
    assert _gap(keras_backend, TorchBackend(threads=1, layout=layout), spec) <= TOLERANCE
