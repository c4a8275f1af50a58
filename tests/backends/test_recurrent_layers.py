"""LSTM and GRU: the spec, Keras' function and training step in PyTorch, and each trap of the
mapping with a negative control (the wrong mapping must fail the same comparison).

Every backend and every ONNX export: tests/test_vocabulary.py (`recurrent_spec`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
keras = pytest.importorskip("keras")

from recurrent_workers import predict_and_export  # noqa: E402  (same folder)
from test_parity import CONSTANT_RTOL, FLOAT64_RTOL, OPTIMIZERS  # noqa: E402  (same folder)

from harness.backends import Backend, get_backend  # noqa: E402
from harness.data import load_arrays  # noqa: E402
from harness.spec import ModelSpec, SpecError, infer, initial_weights, parse_spec  # noqa: E402
from harness.spec import layers as L  # noqa: E402
from harness.spec.initializers import sample  # noqa: E402

TOLERANCE = 1e-5
WRONG = 1e-3  # a wrong mapping moves some probability by more than this


def _spec(layers: str, optimizer: str = OPTIMIZERS["sgd"], name: str = "rnn") -> ModelSpec:
    return parse_spec(f"name: {name}\ninput: {{shape: [28, 28]}}\nlayers:\n{layers}"
                      f"train:\n  optimizer: {optimizer}\n  batch_size: 16\n  epochs: 1\n")


def _one(layer: str) -> ModelSpec:
    """`layer` on the image rows, then the classifier."""
    return _spec(f"  - {layer}\n  - {{type: dense, units: 10, activation: softmax}}\n")


# every variant: sequences into sequences, both GRU conventions, with and without biases
ALL_VARIANTS = """\
  - {type: lstm, units: 6, return_sequences: true, name: a}
  - {type: gru, units: 5, return_sequences: true, reset_after: false}
  - {type: lstm, units: 4, use_bias: false, name: l}
  - {type: gru, units: 4, inputs: [a], use_bias: false, return_sequences: true}
  - {type: gru, units: 3, name: g}
  - {type: lstm, units: 3, unit_forget_bias: false, inputs: [input], name: l2}
  - {type: concatenate, inputs: [l, g, l2]}
  - {type: dense, units: 10, activation: softmax}
"""


def _random_biases(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Biases away from zero (and the forget gate's ones), so that each of them counts."""
    rng = np.random.default_rng(1)
    return {key: rng.normal(0.0, 0.5, value.shape).astype(np.float32)
            if key.endswith(".bias") else value for key, value in weights.items()}


def _x(spec: ModelSpec, n: int = 32) -> np.ndarray:
    return load_arrays(spec.input, limit=n, limit_test=n).x_test


def _gap(spec: ModelSpec, keras_weights: dict, torch_weights: dict, keras_backend: Backend,
         torch_backend: Backend, keras_spec: ModelSpec | None = None) -> float:
    """Max |probability difference| between Keras and torch, each with its own weights."""
    keras_model = keras_backend.build(keras_spec or spec)
    torch_model = torch_backend.build(spec)
    keras_backend.set_weights(keras_model, keras_weights)
    torch_backend.set_weights(torch_model, torch_weights)
    x = _x(spec)
    return float(np.abs(keras_backend.predict(keras_model, x)
                        - torch_backend.predict(torch_model, x)).max())


# --------------------------------------------------------------------------- the spec


def test_shapes_weights_and_labels() -> None:
    summary = infer(_spec(ALL_VARIANTS))
    shapes = [info.output_shape for info in summary.layers]
    assert shapes[:6] == [(28, 6), (28, 5), (4,), (28, 4), (3,), (3,)]
    weights = {f"{i.index}.{w.name}": w.shape for i in summary.layers for w in i.weights}
    assert weights["0.kernel"] == (28, 24) and weights["0.recurrent_kernel"] == (6, 24)
    assert weights["0.bias"] == (24,) and "2.bias" not in weights
    assert weights["1.bias"] == (15,)  # reset_after=False: one input bias
    assert weights["4.bias"] == (2, 9)  # reset_after: input and recurrent biases
    assert [i.layer.describe() for i in summary.layers[:2]] == [
        "lstm 6 sequences", "gru 5 sequences reset_before"]


@pytest.mark.parametrize(("layer", "message"), [
    ("{type: lstm, units: 4, activation: relu}", "activation must be 'tanh'"),
    ("{type: gru, units: 4, recurrent_activation: hard_sigmoid}",
     "recurrent_activation must be 'sigmoid'"),
    ("{type: lstm, units: 0}", "units"),
    ("{type: gru, units: 4, return_sequences: 1}", "return_sequences"),
    ("{type: lstm, units: 4, bias_initializer: orthogonal}", "orthogonal needs an array of 2"),
    ("{type: gru, units: 4, reset_after: false, bias_initializer: orthogonal}",
     "orthogonal needs an array of 2"),
    ("{type: dense, units: 4, bias_initializer: orthogonal}", "orthogonal needs an array of 2"),
    ("{type: lstm, units: 4, reset_after: true}", "unknown field 'reset_after'"),
])
def test_what_cannot_be_mapped_is_refused_at_load(layer: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        _one(layer)


def test_a_recurrent_layer_needs_a_sequence() -> None:
    with pytest.raises(SpecError, match=r"lstm needs a sequence \(steps, features\)"):
        parse_spec("name: x\ninput: {shape: [784]}\nlayers:\n  - {type: lstm, units: 4}\n"
                   "  - {type: dense, units: 10, activation: softmax}\ntrain:\n  optimizer: "
                   f"{OPTIMIZERS['sgd']}\n  batch_size: 16\n  epochs: 1\n")


def test_a_gru_bias_matrix_may_start_orthogonal() -> None:
    spec = _one("{type: gru, units: 4, bias_initializer: {name: orthogonal, gain: 2.0}}")
    bias = initial_weights(spec)["0.bias"]
    np.testing.assert_allclose(bias @ bias.T, 4.0 * np.eye(2), atol=1e-5)


# --------------------------------------------------------------------------- initializers


@pytest.mark.parametrize("shape", [(6, 24), (24, 6), (5, 5), (3, 3, 2, 8)])
@pytest.mark.parametrize("gain", [1.0, 1.5])
def test_orthogonal_is_keras_orthogonal(shape: tuple[int, ...], gain: float) -> None:
    """Same shape, orthonormal rows or columns (whichever are fewer) scaled by gain, as
    keras.initializers.Orthogonal draws; the numbers themselves come from numpy."""
    ours = sample(L.Orthogonal(name="orthogonal", gain=gain), shape, np.random.default_rng(0))
    theirs = np.asarray(keras.initializers.Orthogonal(gain=gain, seed=0)(shape))
    for values in (ours, theirs):
        assert values.shape == shape
        flat = values.reshape(-1, shape[-1])
        gram = flat.T @ flat if flat.shape[0] >= flat.shape[1] else flat @ flat.T
        np.testing.assert_allclose(gram, gain ** 2 * np.eye(len(gram)), atol=1e-5)
    assert not np.allclose(ours, theirs)  # drawn here, not copied


def _corner(draw: Callable[[int], np.ndarray], n: int = 200) -> float:
    return float(np.mean([draw(seed)[0, 0] for seed in range(n)]))


def test_orthogonal_is_sign_corrected_like_keras() -> None:
    """Keras multiplies Q's columns by the signs of R's diagonal, so Q is uniform over the
    orthogonal matrices: its corner averages zero. Negative control: numpy's Householder QR
    alone gives a corner of one sign."""
    def ours(seed: int) -> np.ndarray:
        return sample(L.Orthogonal(name="orthogonal"), (2, 2), np.random.default_rng(seed))

    def theirs(seed: int) -> np.ndarray:
        return np.asarray(keras.initializers.Orthogonal(seed=seed)((2, 2)))

    def uncorrected(seed: int) -> np.ndarray:
        return np.linalg.qr(np.random.default_rng(seed).standard_normal((2, 2)))[0]

    assert abs(_corner(ours)) < 0.15 and abs(_corner(theirs)) < 0.15
    assert abs(_corner(uncorrected)) > 0.5


@pytest.mark.parametrize("unit_forget_bias", [True, False])
def test_unit_forget_bias_is_keras_bias(unit_forget_bias: bool) -> None:
    """The initial bias is Keras' own: the bias initializer's values with, under
    unit_forget_bias, ones for the forget gate, the second of Keras' (i, f, c, o) blocks.
    Negative control: ones in another block are not Keras' bias."""
    spec = _one(f"{{type: lstm, units: 3, unit_forget_bias: {str(unit_forget_bias).lower()}, "
                "bias_initializer: {name: constant, value: 0.25}}")
    ours = initial_weights(spec)["0.bias"]
    layer = keras.layers.LSTM(3, unit_forget_bias=unit_forget_bias,
                              bias_initializer=keras.initializers.Constant(0.25))
    layer.build((None, 28, 28))
    np.testing.assert_array_equal(ours, np.asarray(layer.cell.bias))
    if unit_forget_bias:
        in_the_cell_block = np.r_[np.full(6, 0.25), np.ones(3), np.full(3, 0.25)]
        assert not np.array_equal(in_the_cell_block, np.asarray(layer.cell.bias))


# --------------------------------------------------------------------------- same function


def test_every_variant_computes_the_same_function(keras_backend: Backend,
                                                  torch_backend: Backend) -> None:
    spec = _spec(ALL_VARIANTS)
    weights = _random_biases(initial_weights(spec))
    assert _gap(spec, weights, weights, keras_backend, torch_backend) <= TOLERANCE


@pytest.mark.parametrize("name", ["keras-jax", "keras-torch"])
def test_keras_on_jax_and_torch_compute_it_too(name: str, torch_backend: Backend,
                                               backend_call: Any, tmp_path: Path) -> None:
    """The same function in Keras on JAX and on PyTorch (worker processes). Keras on
    PyTorch's export refuses a GRU without reset_after, naming it and why (its traced step loop
    keeps the example's batch size: ONNX Runtime failed on other batches); the rest of the
    vocabulary's exports: tests/test_vocabulary.py."""
    spec = _spec(ALL_VARIANTS)
    weights = _random_biases(initial_weights(spec))
    x = _x(spec)
    torch_model = torch_backend.build(spec)
    torch_backend.set_weights(torch_model, weights)
    probabilities, exported = backend_call(name, predict_and_export, name, spec, weights, x,
                                           tmp_path / f"{name}.onnx")
    np.testing.assert_allclose(probabilities, torch_backend.predict(torch_model, x), rtol=0,
                               atol=TOLERANCE)
    if name == "keras-torch":
        assert exported.startswith("Keras ") and "cannot export l1_gru (gru, reset_after " \
            "false) to ONNX: torch.onnx traces its step loop with a fixed batch size" in exported
    else:
        assert exported == "exported"


def _blocks(array: np.ndarray, order: list[int]) -> np.ndarray:
    """The gate blocks along the last axis, reordered."""
    parts = np.split(array, len(order), axis=-1)
    return np.concatenate([parts[i] for i in order], axis=-1)


def test_lstm_gate_order_is_checked(keras_backend: Backend, torch_backend: Backend) -> None:
    """Keras' (i, f, c, o) is torch's (i, f, g, o). Negative control: read as TensorFlow 1's
    LSTMCell order (i, c, f, o), the torch model differs."""
    spec = _one("{type: lstm, units: 8}")
    weights = _random_biases(initial_weights(spec))
    wrong = dict(weights, **{f"0.{name}": _blocks(weights[f"0.{name}"], [0, 2, 1, 3])
                             for name in ("kernel", "recurrent_kernel", "bias")})
    assert _gap(spec, weights, weights, keras_backend, torch_backend) <= TOLERANCE
    assert _gap(spec, weights, wrong, keras_backend, torch_backend) > WRONG


def test_gru_gate_order_is_checked(keras_backend: Backend, torch_backend: Backend,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Keras' (z, r, h) is torch's (r, z, n). Negative control: without the swap, differs."""
    from harness.backends.pytorch.layers import recurrent

    spec = _one("{type: gru, units: 8}")
    weights = _random_biases(initial_weights(spec))
    assert _gap(spec, weights, weights, keras_backend, torch_backend) <= TOLERANCE
    monkeypatch.setattr(recurrent, "swap_zr", lambda a: a)
    assert _gap(spec, weights, weights, keras_backend, torch_backend) > WRONG


def test_gru_reset_before_is_not_torchs_gru(keras_backend: Backend,
                                           torch_backend: Backend) -> None:
    """reset_after=False has its own torch cell. Negative control: nn.GRU's kernel (a
    reset_after GRU) with the same weights and a zero recurrent bias computes otherwise."""
    before = _one("{type: gru, units: 8, reset_after: false}")
    after = _one("{type: gru, units: 8}")
    weights = _random_biases(initial_weights(before))
    as_torch_gru = dict(weights, **{"0.bias": np.stack([weights["0.bias"],
                                                        np.zeros_like(weights["0.bias"])])})
    assert _gap(before, weights, weights, keras_backend, torch_backend) <= TOLERANCE
    assert _gap(after, weights, as_torch_gru, keras_backend, torch_backend,
                keras_spec=before) > WRONG


# --------------------------------------------------------------------------- same training

TRAIN_LAYERS = """\
  - {type: lstm, units: 8, return_sequences: true, bias_initializer: {name: normal, stddev: 0.5}}
  - {type: gru, units: 6, return_sequences: true, reset_after: false,
     bias_initializer: {name: normal, stddev: 0.5}}
  - {type: gru, units: 5, bias_initializer: {name: normal, stddev: 0.5}}
  - {type: dense, units: 10, activation: softmax}
"""
STEPS, BATCH = 4, 16


@pytest.fixture(scope="module")
def exact_backends() -> tuple[Backend, Backend]:
    return get_backend("keras", dtype="float64"), get_backend("torch", dtype="float64")


def _train_both(label: str, backends: tuple[Backend, Backend],
                change_torch: Callable[[Any], None] | None = None) -> tuple[dict, dict]:
    """STEPS steps from the same start on the same batches: (start, {backend: weights})."""
    spec = _spec(TRAIN_LAYERS, OPTIMIZERS[label], name=f"rnn_{label}")
    arrays = load_arrays(spec.input, limit=STEPS * BATCH, limit_test=10)
    order = np.random.default_rng(0).permutation(STEPS * BATCH)
    start, final = initial_weights(spec), {}
    for backend in backends:
        model = backend.build(spec)
        backend.set_weights(model, start)
        if backend.name == "torch" and change_torch:
            change_torch(model.net)
        backend.train_epoch(model, backend.to_native(arrays.x_train, arrays.y_train), order,
                            BATCH)
        final[backend.name] = backend.get_weights(model)
    return start, final


def _assert_same(final: dict, label: str) -> None:
    rtol = CONSTANT_RTOL.get(label, FLOAT64_RTOL)  # Keras' Nadam holds a float32 constant
    for key, value in final["keras"].items():
        assert value.dtype == final["torch"][key].dtype == np.float64, key
        np.testing.assert_allclose(final["torch"][key], value, rtol=rtol, atol=rtol * 1e-2,
                                   err_msg=key)


@pytest.mark.parametrize("label", list(OPTIMIZERS))
def test_same_training_steps_give_same_weights(label: str, exact_backends: tuple) -> None:
    """In float64 (see test_parity): torch's LSTM keeps Keras' one bias (b_hh zero, untrained),
    both GRU conventions train alike."""
    start, final = _train_both(label, exact_backends)
    for key in ("0.recurrent_kernel", "1.recurrent_kernel", "2.bias"):
        assert not np.allclose(final["keras"][key], start[key]), key  # training moved them
    _assert_same(final, label)


def test_a_trained_second_lstm_bias_is_caught(exact_backends: tuple) -> None:
    """Negative control: torch's b_hh left trainable gets b_ih's gradient, the LSTM's bias
    moves twice as fast, and the weights part after the first step."""
    def train_b_hh(net: Any) -> None:
        for module in net.modules():
            if hasattr(module, "bias_hh_l0"):
                module.bias_hh_l0.requires_grad_(True)

    _, final = _train_both("sgd", exact_backends, change_torch=train_b_hh)
    with pytest.raises(AssertionError):
        _assert_same(final, "sgd")


# --------------------------------------------------------------------------- Keras files


def test_a_saved_keras_model_loads_back(keras_backend: Backend, tmp_path: Path) -> None:
    """SpecLSTM / SpecGRU are registered: the .keras file loads, same outputs, and its config
    names the spec's initializers (orthogonal recurrent kernels, Keras' default)."""
    spec = _spec(ALL_VARIANTS)
    model = keras_backend.build(spec)
    keras_backend.set_weights(model, _random_biases(initial_weights(spec)))
    path = tmp_path / "rnn.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    x = _x(spec, 8)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), keras_backend.predict(model, x),
                               rtol=0, atol=1e-6)
    lstm = loaded.get_layer("l0_lstm")
    assert type(lstm).__name__ == "SpecLSTM"
    config = lstm.get_config()
    assert config["recurrent_initializer"]["class_name"] == "Orthogonal"
    assert config["kernel_initializer"]["class_name"] == "GlorotUniform"
    assert config["unit_forget_bias"] is True
