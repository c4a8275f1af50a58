"""The Keras reader on models the spec cannot express, one line per layer (its name, its
class, what the spec has), and on what it maps: logits, sparse labels, defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.importing.imported import UnsupportedModel

pytest.importorskip("tensorflow")
pytest.importorskip("keras")


@pytest.fixture(scope="module")
def keras() -> Any:
    from harness.backends import get_backend

    get_backend("keras")
    import keras

    return keras


def read(model: Any, folder: Path) -> Any:
    from harness.importing import keras_model

    path = folder / "m.keras"
    model.save(path)
    return keras_model.read(path)


def problems(model: Any, folder: Path) -> list[str]:
    with pytest.raises(UnsupportedModel) as caught:
        read(model, folder)
    return caught.value.problems


def test_every_unsupported_layer_is_one_line(keras: Any, tmp_path: Path) -> None:
    kl = keras.layers
    model = keras.Sequential([keras.Input((28, 28, 1)), kl.Conv2D(4, 3, name="c1"),
                              kl.UpSampling2D(name="up"), kl.LeakyReLU(name="leaky"),
                              kl.Conv2D(4, 3, data_format="channels_first", name="cf"),
                              kl.Flatten(), kl.Dense(10, activation="softmax")])
    lines = problems(model, tmp_path)
    assert len(lines) == 3
    assert lines[0].startswith("layer 'up' (UpSampling2D): no spec layer; the spec has ")
    assert "Conv2D" in lines[0] and "SelfAttention" in lines[0]
    assert lines[1].startswith("layer 'leaky' (LeakyReLU): no spec layer")
    assert lines[2] == ("layer 'cf' (Conv2D): data_format='channels_first': the spec is "
                        "channels-last only")


def test_functional_shapes_the_spec_has_not(keras: Any, tmp_path: Path) -> None:
    kl = keras.layers
    inputs = keras.Input((784,))
    shared = kl.Dense(32, name="shared")
    x = kl.Concatenate()([shared(inputs), shared(inputs * 2.0)])
    inner = keras.Sequential([kl.Dense(16)], name="inner")
    outputs = kl.Dense(10, activation="softmax")(inner(x))
    lines = problems(keras.Model(inputs, outputs), tmp_path)
    assert any("'shared' (Dense) is called 2 times: the spec has no shared layers" in line
               for line in lines), lines
    assert any("outside a layer" in line for line in lines), lines
    assert any("'inner' (Sequential): a model nested as a layer" in line for line in lines)


def test_arguments_the_spec_fixes(keras: Any, tmp_path: Path) -> None:
    kl = keras.layers
    model = keras.Sequential([keras.Input((28, 28)), kl.LSTM(8, go_backwards=True, name="rnn"),
                              kl.Dense(10, activation="softmax")])
    assert problems(model, tmp_path) == ["layer 'rnn' (LSTM): go_backwards=True: the spec "
                                         "supports go_backwards=False only"]
    model = keras.Sequential([keras.Input((784,)), kl.Dense(10, activation="leaky_relu",
                                                            name="d")])
    assert problems(model, tmp_path)[0].startswith("layer 'd' (Dense): activation "
                                                   "'leaky_relu': the spec has linear, relu")


def test_training_settings_the_spec_cannot_say(keras: Any, tmp_path: Path) -> None:
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(10)])
    model.compile(optimizer=keras.optimizers.Adam(clipnorm=1.0, amsgrad=True),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1,
                                                            from_logits=True))
    assert problems(model, tmp_path) == [
        "optimizer Adam: clipnorm=1.0: the spec supports clipnorm=None only",
        "optimizer Adam: amsgrad=True: the spec supports amsgrad=False only",
        "loss categorical_crossentropy: label_smoothing=0.1: the spec supports "
        "label_smoothing=0.0 only"]
    model.compile(optimizer="adamax", loss="mse")
    assert problems(model, tmp_path) == [
        "optimizer Adamax: the spec has SGD, Adam, Adadelta, RMSprop, Adagrad, Nadam, AdamW",
        "loss mse: the spec trains with categorical cross-entropy only"]
    model.compile(optimizer=keras.optimizers.Adam(weight_decay=0.01), loss="mse")
    assert problems(model, tmp_path)[0] == (
        "optimizer Adam: weight_decay=0.01: the spec supports weight_decay=None only")
    steps = keras.optimizers.schedules.PiecewiseConstantDecay([10], [0.1, 0.01])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=steps),
                  loss="categorical_crossentropy")
    assert problems(model, tmp_path) == [
        "optimizer SGD: learning_rate is PiecewiseConstantDecay: the spec has ExponentialDecay, "
        "CosineDecay without warm-up, or a constant rate"]


def test_keras_schedules_read_as_step_counted_spec_schedules(keras: Any, tmp_path: Path
                                                              ) -> None:
    from harness.importing import keras_model

    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(10, activation="softmax")])
    decay = keras.optimizers.schedules.ExponentialDecay(0.5, decay_steps=7, decay_rate=0.25,
                                                       staircase=True)
    model.compile(optimizer=keras.optimizers.AdamW(learning_rate=decay, weight_decay=0.125),
                  loss="categorical_crossentropy")
    model.save(tmp_path / "m.keras")
    train = keras_model.read(tmp_path / "m.keras").train
    assert train["optimizer"]["name"] == "adamw"
    assert train["optimizer"]["weight_decay"] == 0.125
    assert train["optimizer"]["learning_rate"] == 0.5
    assert train["schedule"] == {"name": "exponential", "decay_steps": 7, "decay_rate": 0.25,
                                 "staircase": True, "unit": "step"}
    cosine = keras.optimizers.schedules.CosineDecay(0.5, decay_steps=9, alpha=0.125)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=cosine),
                  loss="categorical_crossentropy")
    model.save(tmp_path / "c.keras")
    assert keras_model.read(tmp_path / "c.keras").train["schedule"] == {
        "name": "cosine", "decay_steps": 9, "alpha": 0.125, "unit": "step"}


def test_logits_get_a_softmax_and_a_note(keras: Any, tmp_path: Path) -> None:
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(10)])
    imported = read(model, tmp_path)  # uncompiled: no training settings, logits assumed
    assert imported.train is None
    assert imported.layers[-1] == {"type": "activation", "activation": "softmax"}
    assert any("softmax is appended" in note for note in imported.notes)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.5, nesterov=True),
                  loss="categorical_crossentropy")  # probabilities, but no softmax: refused
    assert problems(model, tmp_path) == [
        "the loss takes probabilities (from_logits=False) but the last layer is not a "
        "softmax; the spec's model ends in a softmax"]


def test_onnx_is_read_by_its_own_module(tmp_path: Path) -> None:
    from harness.importing import READERS, reader_for

    assert READERS[".onnx"] == "harness.importing.onnx_model"
    assert reader_for(tmp_path / "m.KERAS").__name__ == "harness.importing.keras_model"


def test_every_keras_entry_reads_its_layer_back(keras: Any) -> None:
    """A new layer type's Keras entry needs its inverse: `harness import` (and the round trip
    of tests/vocabulary_specs.py) read every spec layer back through it."""
    from harness.backends.keras_common.layers import ENTRIES
    from harness.spec import layers as L

    assert set(ENTRIES) == set(L.LAYER_CLASSES)
    for spec_cls, entry in ENTRIES.items():
        assert entry.keras_classes and entry.read is not None, spec_cls.__name__
    classes = [cls for entry in ENTRIES.values() for cls in entry.keras_classes]
    assert len(classes) == len(set(classes))  # a Keras class reads back one way


def test_a_legacy_h5_file_reads_like_a_keras_file(keras: Any, tmp_path: Path) -> None:
    import numpy as np

    from harness.importing import keras_model

    for name in ("m.h5", "m.keras"):  # a model object each (a second save of one differs)
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(4, 3),
                                  keras.layers.GlobalAveragePooling2D(),
                                  keras.layers.Dense(10, activation="softmax")])
        model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
                      loss="categorical_crossentropy")
        model.save(tmp_path / name)
    legacy, current = (keras_model.read(tmp_path / name) for name in ("m.h5", "m.keras"))
    assert legacy.layers == current.layers
    assert legacy.train == current.train == {
        "optimizer": {"name": "sgd", "learning_rate": 0.05, "momentum": 0.9, "nesterov": False},
        "loss": "categorical_crossentropy"}
    for key, value in current.weights.items():
        np.testing.assert_array_equal(legacy.weights[key], value)
