"""`harness import` through the command line: a Functional model written with plain Keras
(not the harness builder) imported and proven in every installed backend; `--weights` kept,
checksummed and used by training; every bad file one line and exit 2, nothing written; a
wrong mapping caught by the proof (exit 1)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from harness.cli import main
from harness.spec import SpecError, load_spec
from harness.spec.initializers import initial_weights

pytest.importorskip("tensorflow")
pytest.importorskip("keras")


@pytest.fixture(scope="module")
def keras() -> Any:
    from harness.backends import get_backend

    get_backend("keras")  # Keras on TensorFlow in this process, as the reader picks it
    import keras

    return keras


def residual_cnn(keras: Any) -> Any:
    """A user's model: a small residual CNN with Add and BatchNorm, logits out, compiled with
    Adam and sparse categorical cross-entropy, its weights moved off their initial values."""
    keras.utils.set_random_seed(3)
    inputs = keras.Input((28, 28, 1))
    stem = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    branch = keras.layers.Conv2D(8, 3, padding="same", use_bias=False)(stem)
    branch = keras.layers.BatchNormalization(momentum=0.9)(branch)
    x = keras.layers.Add()([stem, branch])
    x = keras.layers.Activation("relu")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dropout(0.25)(x)
    outputs = keras.layers.Dense(10)(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(3e-4, beta_2=0.99),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    for variable in model.weights:  # "trained": not what any initializer draws
        value = variable.numpy()
        variable.assign(value + rng.normal(0, 0.05, value.shape).astype(np.float32))
    bn = model.layers[3]
    bn.moving_variance.assign(np.abs(bn.moving_variance.numpy()) + 0.5)
    return model


@pytest.fixture(scope="module")
def user_model(keras: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    path = tmp_path_factory.mktemp("user") / "residual.keras"
    model = residual_cnn(keras)
    model.save(path)
    return model, path


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("error: "), err
    return lines[0]


def test_functional_user_model_imported_and_proven(user_model: tuple[Any, Path], tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    model, path = user_model
    out = tmp_path / "spec" / "residual.yaml"
    assert main(["import", str(path), "--out", str(out), "--weights", "--samples", "64"]) == 0
    printed = capsys.readouterr().out
    assert "sparse_categorical_crossentropy" in printed and "softmax is appended" in printed
    for backend in ("keras", "keras-jax", "keras-torch", "torch"):  # each row: same or skipped
        row = next(line for line in printed.splitlines() if line.startswith(f"│ {backend} "))
        assert "same" in row or "skipped" in row, printed
    spec = load_spec(out)
    assert spec.train.optimizer.model_dump() == {"name": "adam", "learning_rate": 3e-4,
                                                 "beta_1": 0.9, "beta_2": 0.99, "epsilon": 1e-7}
    types = [layer.type for layer in spec.layers]
    assert types == ["conv2d", "conv2d", "batchnorm", "add", "activation", "maxpool2d",
                     "flatten", "dropout", "dense", "activation"]
    assert spec.layers[3].inputs == ("conv2d", "batch_normalization")
    assert spec.layers[2].momentum == 0.9 and spec.layers[1].use_bias is False


def test_weights_round_trip_and_checksum(keras: Any, user_model: tuple[Any, Path],
                                         tmp_path: Path) -> None:
    from harness.backends import get_backend
    from harness.training import build_with_weights

    model, path = user_model
    out = tmp_path / "residual.yaml"
    assert main(["import", str(path), "--out", str(out), "--weights", "--backends",
                 "keras"]) == 0
    spec = load_spec(out)
    weights = initial_weights(spec)  # the file's arrays: the model's own, not a draw
    np.testing.assert_array_equal(weights["0.kernel"], model.layers[1].kernel.numpy())
    np.testing.assert_array_equal(weights["2.moving_variance"],
                                  model.layers[3].moving_variance.numpy())
    x = np.random.default_rng(1).uniform(0, 1, (32, 28, 28, 1)).astype(np.float32)
    keras_tf = get_backend("keras")
    np.testing.assert_allclose(keras_tf.predict(build_with_weights(keras_tf, spec, weights), x),
                               softmax(model.predict(x, verbose=0)), rtol=0, atol=1e-5)

    npz = tmp_path / "residual.weights.npz"
    arrays = dict(np.load(npz))
    arrays["0.kernel"] = arrays["0.kernel"] * 2
    np.savez(npz, **arrays)
    with pytest.raises(SpecError, match="the file changed since the spec was written"):
        load_spec(out)
    arrays["0.kernel"] = arrays["0.kernel"][..., :4]  # without a checksum: the shape is checked
    np.savez(npz, **arrays)
    data = yaml.safe_load(out.read_text())
    del data["initial_weights"]["sha256"]
    out.write_text(yaml.safe_dump(data))
    from harness.errors import UsageError

    with pytest.raises(UsageError, match=r"array '0.kernel' has shape \(3, 3, 1, 4\), the "
                                         r"spec's layer needs \(3, 3, 1, 8\)"):
        initial_weights(load_spec(out))


def test_torch_training_starts_from_the_imported_weights(user_model: tuple[Any, Path],
                                                         tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from harness.training.config import TrainConfig
    from harness.training.loop import _set_up

    model, path = user_model
    out = tmp_path / "residual.yaml"
    assert main(["import", str(path), "--out", str(out), "--weights", "--backends",
                 "keras"]) == 0
    setup = _set_up(load_spec(out), TrainConfig(backend="torch", limit=64, limit_test=64))
    x = setup.arrays.x_test
    np.testing.assert_allclose(setup.backend.predict(setup.model, x),
                               softmax(model.predict(x, verbose=0)), rtol=0, atol=1e-5)


def _truncated(keras: Any, folder: Path) -> Path:
    good = folder / "good.keras"
    keras.Sequential([keras.Input((784,)), keras.layers.Dense(10, activation="softmax")]
                     ).save(good)
    path = folder / "cut.keras"
    path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    return path


def _not_a_model(keras: Any, folder: Path) -> Path:
    path = folder / "notes.keras"
    path.write_text("these are my notes, not a model\n")
    return path


def _unsupported_layer(keras: Any, folder: Path) -> Path:
    path = folder / "upsample.keras"
    keras.Sequential([keras.Input((28, 28, 1)), keras.layers.UpSampling2D(),
                      keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")]
                     ).save(path)
    return path


def _lambda(keras: Any, folder: Path) -> Path:
    path = folder / "lambda.keras"
    keras.Sequential([keras.Input((784,)), keras.layers.Lambda(lambda x: x * 2.0),
                      keras.layers.Dense(10, activation="softmax")]).save(path)
    return path


def _custom_object(keras: Any, folder: Path) -> Path:
    @keras.saving.register_keras_serializable(package="mine")
    class Doubler(keras.layers.Layer):
        def call(self, x: Any) -> Any:
            return x * 2.0

    path = folder / "custom.keras"
    keras.Sequential([keras.Input((784,)), Doubler(),
                      keras.layers.Dense(10, activation="softmax")]).save(path)
    del keras.saving.get_custom_objects()["mine>Doubler"]  # as in a process without it
    return path


def _regularized(keras: Any, folder: Path) -> Path:
    path = folder / "l2.keras"
    keras.Sequential([keras.Input((784,)), keras.layers.Dense(
        10, activation="softmax", kernel_regularizer="l2")]).save(path)
    return path


def _double_softmax(keras: Any, folder: Path) -> Path:
    path = folder / "twice.keras"
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="sgd", loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    model.save(path)
    return path


def _other_suffix(keras: Any, folder: Path) -> Path:
    path = folder / "model.pt"
    path.write_bytes(b"\x00" * 10)
    return path


BAD_FILES = {
    "truncated": (_truncated, "truncated or not a Keras archive"),
    "not a model": (_not_a_model, "truncated or not a Keras archive"),
    "unsupported layer": (_unsupported_layer, "(UpSampling2D): no spec layer; the spec has "),
    "lambda": (_lambda, "a Lambda layer"),
    "custom object": (_custom_object, "custom object 'Doubler'"),
    "regularizer": (_regularized, "kernel_regularizer: the spec has no regularizers"),
    "double softmax": (_double_softmax, "from_logits=True but the model ends in a softmax"),
    "other suffix": (_other_suffix, "harness import reads .keras, .h5, .onnx files"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_file_is_one_line_and_exit_2(case: str, keras: Any, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    make, expected = BAD_FILES[case]
    path = make(keras, tmp_path)
    out = tmp_path / "out" / "spec.yaml"
    capsys.readouterr()
    assert main(["import", str(path), "--out", str(out), "--weights"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(path) in line and expected in line, line
    assert not (tmp_path / "out").exists()


def test_wrong_mapping_fails_the_proof(user_model: tuple[Any, Path], tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """Negative control: a reader that flattens in the wrong order (the dense kernel's rows
    as if the image were channels-first) writes a valid spec that the proof refuses."""
    from harness.importing import keras_model

    model, path = user_model
    read = keras_model.read

    def channels_first_flatten(file: Path) -> Any:
        imported = read(file)
        kernel = imported.weights["8.kernel"]  # (14 * 14 * 8, 10), rows in (H, W, C) order
        rows = np.arange(len(kernel)).reshape(14, 14, 8).transpose(2, 0, 1).reshape(-1)
        imported.weights["8.kernel"] = kernel[rows]
        return imported

    monkeypatch.setattr(keras_model, "read", channels_first_flatten)
    out = tmp_path / "wrong.yaml"
    assert main(["import", str(path), "--out", str(out), "--backends", "keras,torch",
                 "--samples", "64"]) == 1
    captured = capsys.readouterr()
    assert "DIFFERS" in captured.out
    assert "computes otherwise than" in one_error_line(captured.err)
