"""Every zoo spec (and every optimizer and schedule) through Keras and back: built in Keras on
TensorFlow from its initial weights, saved as .keras, read by `harness import`'s Keras reader;
the spec comes back equal (layers, their graph, input, optimizer, schedule and loss) and the
imported spec computes what the file does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from vocabulary_specs import (  # tests/
    SCHEDULE_CASES,
    optimizer_cases,
    optimizer_spec,
    vocabulary_specs,
)

from harness.spec import ModelSpec, infer, load_spec
from harness.spec.initializers import initial_weights
from harness.spec.loader import list_specs

pytest.importorskip("tensorflow")
pytest.importorskip("keras")

TOLERANCE = 1e-5


def layers_as_graph(spec: ModelSpec) -> list[tuple[dict[str, Any], tuple[int, ...]]]:
    """Each layer without its name and inputs, with the indices of the layers it reads: two
    specs of one graph are equal so, whatever their layers are called."""
    return [(_resolved(info), info.inputs) for info in infer(spec).layers]


def _resolved(info: Any) -> dict[str, Any]:
    """The layer's fields; a reshape's -1 as the size it stands for (Keras stores that)."""
    data = info.layer.model_dump(mode="json", exclude={"name", "inputs"})
    if data["type"] == "reshape":
        data["target_shape"] = list(info.output_shape)
    return data


def imported_spec(imported: Any, spec: ModelSpec) -> ModelSpec:
    # the schedule comes from the file or not at all
    train = {**spec.train.model_dump(mode="json", exclude={"schedule"}), **imported.train}
    # the data's fields (dataset, scale, normalization) are not the model's: a file has none
    data = spec.input.model_dump(mode="json", exclude={"shape"}, exclude_none=True)
    return ModelSpec.model_validate({"name": spec.name, "input": {
        **data, "shape": list(imported.input_shape)}, "layers": imported.layers,
        "train": train})


@pytest.fixture(scope="module")
def keras_tf() -> Any:
    from harness.backends import get_backend

    return get_backend("keras")


def round_trip(spec: ModelSpec, keras_tf: Any, folder: Path) -> None:
    from harness.importing import keras_model
    from harness.training import build_with_weights

    weights = initial_weights(spec)
    model = build_with_weights(keras_tf, spec, weights)
    path = folder / "x.keras"
    model.save(path)

    imported = keras_model.read(path)
    assert imported.notes == []
    back = imported_spec(imported, spec)
    assert back.input == spec.input
    assert layers_as_graph(back) == layers_as_graph(spec)
    assert back.train.optimizer == spec.train.optimizer
    assert back.train.schedule == spec.train.schedule
    assert back.train.loss == spec.train.loss
    assert imported.weights.keys() == weights.keys()
    for key, value in weights.items():
        np.testing.assert_array_equal(imported.weights[key], value)

    x = np.random.default_rng(0).uniform(0, 1, (16, *spec.input.shape)).astype(np.float32)
    original = keras_model.predict(path, x)
    np.testing.assert_allclose(original, keras_tf.predict(model, x), rtol=0, atol=TOLERANCE)
    rebuilt = build_with_weights(keras_tf, back, imported.weights)
    np.testing.assert_allclose(keras_tf.predict(rebuilt, x), original, rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("name", list_specs("all"))
def test_zoo_spec_round_trip(name: str, keras_tf: Any, tmp_path: Path) -> None:
    round_trip(load_spec(name), keras_tf, tmp_path)


@pytest.mark.parametrize("index", range(len(vocabulary_specs())))
def test_vocabulary_round_trip(index: int, keras_tf: Any, tmp_path: Path) -> None:
    """Every layer type, activation, initializer and switch of the spec language comes back."""
    round_trip(vocabulary_specs()[index], keras_tf, tmp_path)


@pytest.mark.parametrize("label", [*optimizer_cases(), *SCHEDULE_CASES])
def test_optimizer_round_trip(label: str, keras_tf: Any, tmp_path: Path) -> None:
    round_trip(optimizer_spec(label), keras_tf, tmp_path)
