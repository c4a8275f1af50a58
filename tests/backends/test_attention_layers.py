"""Attention layers (multihead_attention, transformer_encoder): one-line spec errors, the same
function in Keras and PyTorch from the same weights, the same training steps in float64, and a
saved `.keras` model that loads back. Every trap of the mapping has a negative control: the
wrong mapping (heads in the other order, batch and steps swapped, 1/sqrt(features) as the
scale, the other normalization order) must fail the same comparison.

Every backend, the ONNX exports and a training step: tests/test_vocabulary.py attention_spec.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from harness.spec import ModelSpec, SpecError, infer, initial_weights, parse_spec

TOLERANCE = 1e-5
WRONG = 1e-3  # a wrong mapping moves some probability by far more than this

PACKED = {"type": "multihead_attention", "num_heads": 4, "key_dim": 7}  # 4 * 7 == 28 features
SEPARATE = {"type": "multihead_attention", "num_heads": 2, "key_dim": 5}  # 2 * 5 != 28
NO_BIAS = {**PACKED, "use_bias": False}


def encoder(norm_first: bool, **extra: Any) -> dict[str, Any]:
    return {"type": "transformer_encoder", "num_heads": 4, "key_dim": 7, "mlp_units": 16,
            "epsilon": 0.001, "norm_first": norm_first, **extra}


def _data(layers: list[dict[str, Any]], shape: list[int] | None = None,
          optimizer: dict[str, Any] | None = None) -> dict[str, Any]:
    optimizer = optimizer or {"name": "sgd", "learning_rate": 0.1, "momentum": 0.0,
                              "nesterov": False}
    return {"name": "attention", "input": {"shape": shape or [28, 28]},
            "layers": [*layers, {"type": "flatten"},
                       {"type": "dense", "units": 10, "activation": "softmax"}],
            "train": {"optimizer": optimizer, "batch_size": 50, "epochs": 1}}


def spec_of(layers: list[dict[str, Any]], **kwargs: Any) -> ModelSpec:
    return parse_spec(yaml.safe_dump(_data(layers, **kwargs)), source="net.yaml")


# --------------------------------------------------------------------------- the spec


def test_weights_are_keras_layouts_and_names() -> None:
    summary = infer(spec_of([SEPARATE, encoder(True, mlp_units=12)]))
    attention, block = (info.weights for info in summary.layers[:2])
    assert [(w.name, w.shape) for w in attention] == [
        ("query.kernel", (28, 2, 5)), ("query.bias", (2, 5)), ("key.kernel", (28, 2, 5)),
        ("key.bias", (2, 5)), ("value.kernel", (28, 2, 5)), ("value.bias", (2, 5)),
        ("output.kernel", (2, 5, 28)), ("output.bias", (28,))]
    assert [w.name for w in block][8:] == [
        "norm1.gamma", "norm1.beta", "mlp1.kernel", "mlp1.bias", "mlp2.kernel", "mlp2.bias",
        "norm2.gamma", "norm2.beta"]
    assert {w.name: w.shape for w in block}["mlp1.kernel"] == (28, 12)
    assert [w.name for w in block][:8] == [f"attention.{w.name}" for w in attention]
    assert infer(spec_of([NO_BIAS])).layers[0].params == 4 * 28 * 28
    labels = [info.layer.describe() for info in summary.layers[:2]]
    assert labels == ["multihead_attention 2x5",
                      "transformer_encoder 4x7 mlp 12 relu pre-norm eps=0.001"]


@pytest.mark.parametrize(("layer", "shape", "expected"), [
    ({**PACKED, "num_heads": 0}, None, "layers[0].num_heads"),
    ({**PACKED, "dropout": 1.0}, None, "layers[0].dropout"),
    ({**PACKED, "use_bias": "yes"}, None, "layers[0].use_bias"),
    (PACKED, [784], "layers[0].type: multihead_attention needs a sequence (steps, features)"),
    (PACKED, [28, 28, 1], "layers[0].type: multihead_attention needs a sequence"),
    ({k: v for k, v in encoder(False).items() if k != "epsilon"}, None, "layers[0].epsilon"),
    (encoder(False, mlp_activation="tanh"), None, "layers[0].mlp_activation"),
    (encoder(False, activation="relu"), None, "unknown field 'activation'"),
    (encoder(False, mlp_units=0), None, "layers[0].mlp_units"),
])
def test_attention_mistakes_are_one_line_each(layer: dict[str, Any], shape: list[int] | None,
                                              expected: str) -> None:
    with pytest.raises(SpecError) as caught:
        spec_of([layer], shape=shape)
    lines = str(caught.value).splitlines()
    assert any(expected in line for line in lines), lines
    assert all(line.startswith("net.yaml: layers") for line in lines), lines


# --------------------------------------------------------------------------- same function

pytest.importorskip("torch")
pytest.importorskip("keras")


def _scrambled(spec: ModelSpec) -> dict[str, np.ndarray]:
    """The initial weights with random biases and LayerNorm offsets and scales."""
    rng = np.random.default_rng(1)
    out = {}
    for key, value in initial_weights(spec).items():
        if key.endswith((".bias", ".beta")):
            value = rng.normal(0.0, 0.3, value.shape).astype(np.float32)
        elif key.endswith(".gamma"):
            value = rng.uniform(0.5, 1.5, value.shape).astype(np.float32)
        out[key] = value
    return out


def gap(spec: ModelSpec, keras_backend: Any, torch_backend: Any,
        tamper: Callable[[Any], None] | None = None, round_trip: bool = True) -> float:
    """Max |probability difference| of the two backends from the same weights; `tamper`
    changes the torch module (a negative control's wrong mapping) after its weights load.
    `round_trip`: torch gives back the very arrays it was given."""
    from harness.data import load_arrays

    weights = _scrambled(spec)
    keras_model, torch_model = keras_backend.build(spec), torch_backend.build(spec)
    keras_backend.set_weights(keras_model, weights)
    torch_backend.set_weights(torch_model, weights)
    if round_trip:
        back = torch_backend.get_weights(torch_model)
        assert all(np.array_equal(back[key], weights[key]) for key in weights)
    if tamper is not None:
        tamper(torch_model.net)
    x = load_arrays(spec.input, limit=32, limit_test=32).x_test
    return float(np.abs(torch_backend.predict(torch_model, x)
                        - keras_backend.predict(keras_model, x)).max())


@pytest.mark.parametrize("layers", [
    [PACKED], [SEPARATE], [NO_BIAS], [{**SEPARATE, "use_bias": False}],
    [encoder(False)], [encoder(True, mlp_activation="gelu")],
    [encoder(False, num_heads=3, key_dim=6, epsilon=0.5)],
], ids=["packed", "separate", "packed-no-bias", "separate-no-bias", "post-norm",
        "pre-norm-gelu", "encoder-separate"])
def test_same_weights_give_same_outputs(layers: list[dict[str, Any]], keras_backend: Any,
                                        torch_backend: Any) -> None:
    assert gap(spec_of(layers), keras_backend, torch_backend) <= TOLERANCE


def _modules(net: Any, kind: str) -> list[Any]:
    from harness.backends.pytorch.layers import attention

    found = [m for m in net.modules() if isinstance(m, getattr(attention, kind))]
    assert found, kind
    return found


def _wrong_head_order(a: np.ndarray) -> np.ndarray:
    """Keras (features, heads, key_dim) flattened key_dim-major: the heads' dims interleaved."""
    return a.transpose(0, 2, 1).reshape(a.shape[0], -1).T


@pytest.mark.parametrize("wrong", [False, True], ids=["as-built", "heads-interleaved"])
@pytest.mark.parametrize("layer", [PACKED, SEPARATE], ids=["packed", "separate"])
def test_the_heads_of_a_kernel_are_in_keras_order(
        layer: dict[str, Any], wrong: bool, keras_backend: Any, torch_backend: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Row h * key_dim + k of torch's projection is Keras' kernel[:, h, k]. Negative control:
    the kernel flattened in (key_dim, heads) order loads without complaint and differs."""
    from harness.backends.pytorch.layers import attention

    if wrong:
        monkeypatch.setattr(attention, "kernel_in", _wrong_head_order)
    difference = gap(spec_of([layer]), keras_backend, torch_backend, round_trip=not wrong)
    assert difference > WRONG if wrong else difference <= TOLERANCE


def _steps_first(net: Any) -> None:
    for module in _modules(net, "PackedSelfAttention"):
        module.batch_first = False


@pytest.mark.parametrize("wrong", [False, True], ids=["batch-first", "steps-first"])
def test_attention_is_over_steps_not_the_batch(wrong: bool, keras_backend: Any,
                                               torch_backend: Any) -> None:
    """nn.MultiheadAttention is built batch_first. Negative control: read as (steps, N, E)
    (batch_first=False) it attends across the batch and differs."""
    difference = gap(spec_of([PACKED]), keras_backend, torch_backend,
                     _steps_first if wrong else None)
    assert difference > WRONG if wrong else difference <= TOLERANCE


def _scale_by_features(net: Any) -> None:
    for module in _modules(net, "SeparateSelfAttention"):
        module.scale = 1.0 / math.sqrt(28)


@pytest.mark.parametrize("wrong", [False, True], ids=["1/sqrt(key_dim)", "1/sqrt(features)"])
def test_scores_are_scaled_by_the_key_dim(wrong: bool, keras_backend: Any,
                                          torch_backend: Any) -> None:
    """Separate projections (2 heads of 5 on 28 features) scale by 1/sqrt(key_dim) = 1/sqrt(5).
    Negative control: 1/sqrt(features) differs."""
    difference = gap(spec_of([SEPARATE]), keras_backend, torch_backend,
                     _scale_by_features if wrong else None)
    assert difference > WRONG if wrong else difference <= TOLERANCE


def _other_norm_order(net: Any) -> None:
    for module in _modules(net, "EncoderBlock"):
        module.norm_first = not module.norm_first


@pytest.mark.parametrize("wrong", [False, True], ids=["as-built", "other-order"])
@pytest.mark.parametrize("norm_first", [False, True], ids=["post-norm", "pre-norm"])
def test_pre_and_post_norm_are_not_confused(norm_first: bool, wrong: bool, keras_backend: Any,
                                            torch_backend: Any) -> None:
    """Negative control: the torch block with the other normalization order differs."""
    difference = gap(spec_of([encoder(norm_first)]), keras_backend, torch_backend,
                     _other_norm_order if wrong else None)
    assert difference > WRONG if wrong else difference <= TOLERANCE


# --------------------------------------------------------------------------- training, saving

# As tests/backends/test_parity.py: in float64 the frameworks' roundings (2**-52) leave the
# weights after 8 steps within a million roundings of each other; any real difference in the
# maths is orders of magnitude above that.
FLOAT64_RTOL = 1e6 * np.finfo(np.float64).eps
TRAIN_OPTIMIZERS = {
    "sgd": {"name": "sgd", "learning_rate": 0.0078125, "momentum": 0.875, "nesterov": True},
    "adam": {"name": "adam", "learning_rate": 0.0078125, "beta_1": 0.875,
             "beta_2": 0.9990234375, "epsilon": 0.0078125},
    "rmsprop": {"name": "rmsprop", "learning_rate": 0.0078125, "rho": 0.875, "momentum": 0.5,
                "epsilon": 0.0078125, "centered": True},
}
# key_dim 4: Keras on TensorFlow scales by 1/sqrt(key_dim) cast from a Python float, which
# passes through float32 (1/sqrt(7) is then off by 1e-8, and the comparison would fail on
# that alone); 1/sqrt(4) = 0.5 is exact in float32. No gelu either: TensorFlow's exact gelu
# holds its 1/sqrt(2) likewise (gelu is compared in float32 above and in the vocabulary).
TRAIN_LAYERS = [encoder(False, num_heads=7, key_dim=4), {**SEPARATE, "key_dim": 4},
                encoder(True, num_heads=3, key_dim=4, mlp_units=12)]
STEPS, BATCH = 8, 50


@pytest.mark.parametrize("label", list(TRAIN_OPTIMIZERS))
def test_same_training_steps_give_same_weights(label: str) -> None:
    """Same start, same batches, no dropout, float64: after 8 steps Keras and PyTorch hold the
    same weights (both encoders, packed and separate attention)."""
    from harness.backends import get_backend
    from harness.data import load_arrays

    spec = spec_of(TRAIN_LAYERS, optimizer=TRAIN_OPTIMIZERS[label])
    arrays = load_arrays(spec.input, limit=STEPS * BATCH, limit_test=10)
    order = np.random.default_rng(0).permutation(STEPS * BATCH)
    start, final, losses = initial_weights(spec), {}, {}
    for name in ("keras", "torch"):
        backend = get_backend(name, dtype="float64")
        model = backend.build(spec)
        backend.set_weights(model, start)
        losses[name] = backend.train_epoch(
            model, backend.to_native(arrays.x_train, arrays.y_train), order, BATCH).loss
        final[name] = backend.get_weights(model)
    # Keras' loss metric is float32 whatever the model's dtype
    assert losses["torch"] == pytest.approx(losses["keras"], rel=1e-6)
    assert not np.allclose(final["keras"]["0.attention.query.kernel"],
                           start["0.attention.query.kernel"])
    for key, value in final["keras"].items():
        assert value.dtype == final["torch"][key].dtype == np.float64, key
        np.testing.assert_allclose(final["torch"][key], value, rtol=FLOAT64_RTOL,
                                   atol=FLOAT64_RTOL * 1e-2, err_msg=f"{label}: {key}")


def test_a_saved_keras_model_loads_back(keras_backend: Any, tmp_path: Path) -> None:
    """The custom layers are registered: a `.keras` file loads, and computes the same."""
    import keras

    from harness.backends.keras_common.layers.attention import (
        SelfAttention,
        TransformerEncoderBlock,
    )
    from harness.data import load_arrays

    spec = spec_of([SEPARATE, encoder(True, dropout=0.25)])
    model = keras_backend.build(spec)
    keras_backend.set_weights(model, _scrambled(spec))
    model.save(tmp_path / "attention.keras")
    loaded = keras.saving.load_model(tmp_path / "attention.keras")
    assert [type(layer) for layer in loaded.layers[:2]] == [SelfAttention,
                                                            TransformerEncoderBlock]
    assert loaded.layers[1].get_config()["dropout"] == 0.25
    x = load_arrays(spec.input, limit=8, limit_test=8).x_test
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert keras_backend.get_weights(loaded).keys() == keras_backend.get_weights(model).keys()
