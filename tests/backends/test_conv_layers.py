"""The conv family (conv2d's dilation and groups, depthwise_conv2d, separable_conv2d, conv1d,
global 1-D pools): Keras and PyTorch compute the same function from the same weights, train
alike in float64, and each layout trap has a negative control: the wrong mapping must fail
the same comparison. (Every backend and ONNX export: tests/test_vocabulary.py's conv specs.)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import yaml

pytest.importorskip("torch")
pytest.importorskip("keras")

from harness.backends import Backend, get_backend  # noqa: E402
from harness.backends.pytorch.layers import BUILDERS, TorchLayer  # noqa: E402
from harness.backends.pytorch.layers import conv as torch_conv  # noqa: E402
from harness.data import load_arrays  # noqa: E402
from harness.spec import ModelSpec, initial_weights, parse_spec  # noqa: E402
from harness.spec import layers as L  # noqa: E402

TOLERANCE = 1e-5
FLOAT64_RTOL = 1e6 * np.finfo(np.float64).eps  # as tests/backends/test_parity.py argues
IMAGE, SEQUENCE = [28, 28, 1], [28, 28]


def spec_of(layers: list[dict[str, Any]], shape: list[int], optimizer: str | None = None
            ) -> ModelSpec:
    optimizer = optimizer or "{name: sgd, learning_rate: 0.125, momentum: 0.0, nesterov: false}"
    return parse_spec(yaml.safe_dump({
        "name": "conv_layers", "input": {"shape": shape}, "layers": layers,
        "train": {"optimizer": yaml.safe_load(optimizer), "batch_size": 50, "epochs": 1}}))


def head(shape: list[int]) -> list[dict[str, Any]]:
    """Flatten (an image) or a global pool (a sequence), then the softmax."""
    pool = {"type": "flatten"} if len(shape) == 3 else {"type": "global_avgpool1d"}
    return [pool, {"type": "dense", "units": 10, "activation": "softmax"}]


def _scrambled(spec: ModelSpec) -> dict[str, np.ndarray]:
    """Initial weights with random biases, so every array matters."""
    rng = np.random.default_rng(1)
    return {key: rng.normal(0.0, 0.1, value.shape).astype(np.float32)
            if key.endswith(".bias") else value for key, value in initial_weights(spec).items()}


def gap(spec: ModelSpec, keras_backend: Backend, torch_backend: Backend,
        round_trip: bool = True) -> float:
    """The largest probability difference between Keras and PyTorch on 32 test images, after
    checking (`round_trip`) that each gives the canonical weights back as they were set."""
    weights = _scrambled(spec)
    x = load_arrays(spec.input, limit=32, limit_test=32).x_test
    probabilities = []
    for backend in (keras_backend, torch_backend):
        model = backend.build(spec)
        backend.set_weights(model, weights)
        back = backend.get_weights(model)
        assert not round_trip or all(np.array_equal(back[key], weights[key])
                                     for key in weights), backend.name
        probabilities.append(backend.predict(model, x))
    return float(np.abs(probabilities[0] - probabilities[1]).max())


# Each layer with TensorFlow's asymmetric 'same' padding (stride 2, odd kernel on an even
# size: one row/column/step of padding, at the end) and with its other options.
CASES: dict[str, tuple[list[dict[str, Any]], list[int]]] = {
    "conv2d_same_stride2": ([{"type": "conv2d", "filters": 4, "kernel_size": 3, "strides": 2,
                              "padding": "same", "activation": "tanh"}], IMAGE),
    "conv2d_dilated_grouped": ([
        {"type": "conv2d", "filters": 4, "kernel_size": 3, "padding": "same"},
        {"type": "conv2d", "filters": 6, "kernel_size": [3, 2], "dilation_rate": [2, 3],
         "groups": 2, "padding": "same", "activation": "relu"}], IMAGE),
    "depthwise_same_stride2": ([
        {"type": "conv2d", "filters": 3, "kernel_size": 1},
        {"type": "depthwise_conv2d", "kernel_size": 3, "strides": 2, "padding": "same",
         "depth_multiplier": 2, "activation": "tanh"}], IMAGE),
    "depthwise_dilated": ([{"type": "depthwise_conv2d", "kernel_size": 2, "dilation_rate": 2,
                            "padding": "same", "depth_multiplier": 3, "use_bias": False}],
                          IMAGE),
    "separable_same_stride2": ([
        {"type": "conv2d", "filters": 3, "kernel_size": 1},
        {"type": "separable_conv2d", "filters": 5, "kernel_size": 3, "strides": 2,
         "padding": "same", "depth_multiplier": 2, "activation": "tanh"}], IMAGE),
    "conv1d_same_stride2": ([{"type": "conv1d", "filters": 4, "kernel_size": 3, "strides": 2,
                              "padding": "same", "activation": "tanh"}], SEQUENCE),
    "conv1d_causal_dilated": ([
        {"type": "conv1d", "filters": 4, "kernel_size": 3, "dilation_rate": 2,
         "padding": "causal", "use_bias": False},
        {"type": "conv1d", "filters": 4, "kernel_size": 2, "strides": 3, "padding": "causal"},
        {"type": "global_maxpool1d"}, {"type": "dense", "units": 10, "activation": "softmax"}],
        SEQUENCE),
}


@pytest.mark.parametrize("case", list(CASES))
def test_same_weights_give_same_outputs(case: str, keras_backend: Backend,
                                        torch_backend: Backend) -> None:
    layers, shape = CASES[case]
    if layers[-1]["type"] != "dense":
        layers = layers + head(shape)
    assert gap(spec_of(layers, shape), keras_backend, torch_backend) <= TOLERANCE


def _symmetric_padding(padding: tuple[int, int, int, int]
                       ) -> tuple[list[tuple[str, Any]], tuple[int, int]]:
    """The wrong mapping: torch's own symmetric padding (the larger side on both ends)."""
    top, bottom, left, right = padding
    return [], (max(top, bottom), max(left, right))


@pytest.mark.parametrize("case", ["conv2d_same_stride2", "depthwise_same_stride2",
                                  "separable_same_stride2", "conv1d_same_stride2"])
@pytest.mark.parametrize("mapping", ["asymmetric", "symmetric"])
def test_same_padding_with_stride_2_pads_the_end(case: str, mapping: str,
                                                 keras_backend: Backend,
                                                 torch_backend: Backend,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """TensorFlow's 'same' with stride 2 pads 0 before and 1 after; negative control: a
    symmetric padding of 1 (same output size, every window shifted) fails the comparison."""
    layers, shape = CASES[case]
    spec = spec_of(layers + head(shape), shape)
    if mapping == "symmetric":
        monkeypatch.setattr(torch_conv, "explicit_padding", _symmetric_padding)
        monkeypatch.setattr(torch_conv, "steps_padding", lambda p: (max(p[:2]),) * 2)
    difference = gap(spec, keras_backend, torch_backend)
    assert difference <= TOLERANCE if mapping == "asymmetric" else difference > 1e-3


def _multiplier_major(a: np.ndarray) -> np.ndarray:
    """The naive reshape: output channel m * in + c instead of c * multiplier + m."""
    kh, kw, channels, multiplier = a.shape
    return a.transpose(0, 1, 3, 2).reshape(kh, kw, channels * multiplier, 1).transpose(2, 3, 0, 1)


@pytest.mark.parametrize("case", ["depthwise_same_stride2", "separable_same_stride2"])
def test_a_multiplier_major_depthwise_kernel_fails(case: str, keras_backend: Backend,
                                                   torch_backend: Backend,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Negative control: Keras' (kh, kw, in, multiplier) kernel reshaped multiplier-major into
    torch's (in * multiplier, 1, kh, kw) gives another function (3 channels, multiplier 2)."""
    layers, shape = CASES[case]
    monkeypatch.setattr(torch_conv, "depthwise_to_torch", _multiplier_major)
    spec = spec_of(layers + head(shape), shape)
    assert gap(spec, keras_backend, torch_backend, round_trip=False) > 1e-3


def test_depthwise_kernel_layout_round_trips() -> None:
    kernel = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    torch_kernel = torch_conv.depthwise_to_torch(kernel)
    assert torch_kernel.shape == (20, 1, 2, 3)
    assert np.array_equal(torch_kernel[1 * 5 + 2, 0], kernel[:, :, 1, 2])  # c * mult + m
    assert np.array_equal(torch_conv.depthwise_from_torch(torch_kernel, 5), kernel)


SEPARABLE = [{"type": "conv2d", "filters": 3, "kernel_size": 1},
             {"type": "separable_conv2d", "filters": 3, "kernel_size": 3, "padding": "same",
              "activation": "tanh"}]


@pytest.mark.parametrize("order", ["depthwise first", "pointwise first"])
def test_separable_is_depthwise_then_pointwise(order: str, keras_backend: Backend,
                                               torch_backend: Backend,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Keras' SeparableConv2D is depthwise, then the 1x1 pointwise (with the bias); negative
    control: the same two convolutions in the other order (3 channels in and out, so both
    orders build) give another function."""
    if order == "pointwise first":
        built = BUILDERS[L.SeparableConv2D]

        def swapped(info: Any, ctx: Any) -> TorchLayer:
            layer = built(info, ctx)
            return TorchLayer(layer.parts[::-1], layer.weights)

        monkeypatch.setitem(BUILDERS, L.SeparableConv2D, swapped)
    difference = gap(spec_of(SEPARABLE + head(IMAGE), IMAGE), keras_backend, torch_backend)
    assert difference <= TOLERANCE if order == "depthwise first" else difference > 1e-3


# --------------------------------------------------------------------------- training

TRAINED = {
    "image": ([{"type": "depthwise_conv2d", "kernel_size": 3, "strides": 2, "padding": "same",
                "depth_multiplier": 2, "activation": "tanh"},
               {"type": "separable_conv2d", "filters": 4, "kernel_size": 3, "strides": 2,
                "padding": "same", "activation": "tanh"},
               {"type": "conv2d", "filters": 4, "kernel_size": 3, "dilation_rate": 2,
                "groups": 2, "padding": "same", "activation": "tanh"}], IMAGE),
    "sequence": ([{"type": "conv1d", "filters": 6, "kernel_size": 3, "strides": 2,
                   "padding": "same", "activation": "tanh"},
                  {"type": "conv1d", "filters": 4, "kernel_size": 2, "dilation_rate": 2,
                   "padding": "causal", "activation": "tanh"}], SEQUENCE),
}
OPTIMIZERS = {
    "sgd_momentum": "{name: sgd, learning_rate: 0.0625, momentum: 0.875, nesterov: false}",
    "adam": "{name: adam, learning_rate: 0.0078125, beta_1: 0.875, beta_2: 0.9990234375,"
            " epsilon: 0.0078125}",
}
STEPS, BATCH = 4, 50


@pytest.fixture(scope="module")
def exact_backends() -> tuple[Backend, Backend]:
    return get_backend("keras", dtype="float64"), get_backend("torch", dtype="float64")


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("kind", list(TRAINED))
def test_same_training_steps_give_same_weights(kind: str, optimizer: str,
                                               exact_backends: tuple[Backend, Backend]) -> None:
    """Four float64 steps from the same start over the same batches: every kernel and bias
    (depthwise, pointwise, grouped and dilated, conv1d) moves, and the same in both."""
    layers, shape = TRAINED[kind]
    spec = spec_of(layers + head(shape), shape, OPTIMIZERS[optimizer])
    arrays = load_arrays(spec.input, limit=STEPS * BATCH, limit_test=10)
    order = np.random.default_rng(0).permutation(STEPS * BATCH)
    start = initial_weights(spec)
    final = {}
    for backend in exact_backends:
        model = backend.build(spec)
        backend.set_weights(model, start)
        backend.train_epoch(model, backend.to_native(arrays.x_train, arrays.y_train), order,
                            BATCH)
        final[backend.name] = backend.get_weights(model)
    for key, value in final["keras"].items():
        assert not np.allclose(value, start[key]), f"{key} did not move"
        assert value.dtype == final["torch"][key].dtype == np.float64, key
        np.testing.assert_allclose(final["torch"][key], value, rtol=FLOAT64_RTOL,
                                   atol=FLOAT64_RTOL * 1e-2, err_msg=key)


# --------------------------------------------------------------------------- saved models


def test_a_saved_keras_model_loads_back_with_the_spec_initializers(
        keras_backend: Backend, tmp_path: Any) -> None:
    """Built-in Keras layers only (no custom layer to register): the `.keras` file loads back
    to the same function, its config naming the spec's depthwise and pointwise initializers."""
    import keras

    layers = [*CASES["separable_same_stride2"][0], *CASES["depthwise_dilated"][0],
              {"type": "conv2d", "filters": 6, "kernel_size": 3, "groups": 3}]
    layers[1] |= {"depthwise_initializer": "he_normal", "pointwise_initializer": "lecun_normal"}
    spec = spec_of(layers + head(IMAGE), IMAGE)
    model = keras_backend.build(spec)
    keras_backend.set_weights(model, _scrambled(spec))
    loaded = keras.models.load_model(keras_backend.save(model, tmp_path))
    x = load_arrays(spec.input, limit=8, limit_test=8).x_test
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    config = loaded.get_layer("l1_separable_conv2d").get_config()
    assert config["depthwise_initializer"]["class_name"] == "HeNormal"
    assert config["pointwise_initializer"]["class_name"] == "LecunNormal"
    assert loaded.get_layer("l2_depthwise_conv2d").get_config()["depthwise_initializer"][
        "class_name"] == "GlorotUniform"
    assert loaded.get_layer("l3_conv2d").get_config()["groups"] == 3
