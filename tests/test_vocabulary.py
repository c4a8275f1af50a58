"""Every word of the spec language works in every stage.

The vocabulary is read from the schema itself (`harness/spec/layers/`, `schema.py`): each
activation, initializer, layer type, dataset, optimizer, boolean switch, padding x stride x
kernel parity of every window layer, the BatchNorm and Dropout placements and the graph merges.
A few small specs (vocabulary_specs.py) speak it all; each goes through every backend (same
weights -> same outputs), every ONNX export (checker, then ONNX Runtime against the native
model) and one training step in each backend.
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
from typing import Any

import numpy as np
import pytest
from vocabulary_specs import (  # same folder
    ACTIVATIONS,
    DATASETS,
    HYPERPARAMETERS,
    INITIALIZERS,
    KERNEL_INITIALIZERS,
    LAYER_TYPES,
    N_IMAGES,
    OPTIMIZERS,
    PADDINGS,
    PLACEMENTS,
    SCHEDULE_CASES,
    SCHEDULE_EPOCHS,
    SCHEDULE_STEPS,
    SCHEDULE_UNITS,
    SCHEDULES,
    TOLERANCE,
    WINDOW_TYPES,
    bool_fields,
    optimizer_cases,
    optimizer_spec,
    vocabulary_specs,
)

from harness.spec import ModelSpec, infer, initial_weights
from harness.spec import layers as L
from harness.spec import schema as S

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
            words["switch"].update((layer.type, f, getattr(layer, f)) for f in bool_fields(
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
    assert set(S.SCHEDULES) == set(SCHEDULES)
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
                               for field in bool_fields(cls) for value in (False, True)}
    assert set(itertools.product(WINDOW_TYPES, PADDINGS, (False, True), (1, 2))) \
        <= words["window"]
    merges = [name for name, cls in LAYER_TYPES.items() if cls.arity != (1, 1)]
    assert words["merge"] == set(itertools.product(merges, ("image", "flat")))
    assert words["batchnorm"] == words["dropout"] == set(PLACEMENTS)
    assert {case["name"] for case in optimizer_cases().values()} == set(OPTIMIZERS)
    schedules = [schedule for _, schedule in SCHEDULE_CASES.values()]
    assert {(s["name"], s["unit"]) for s in schedules} == set(itertools.product(
        SCHEDULES, SCHEDULE_UNITS))
    assert {s["staircase"] for s in schedules if "staircase" in s} == {False, True}


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


def scheduled_epochs(name: str, spec: ModelSpec, arrays: Any) -> dict[str, np.ndarray]:
    """SCHEDULE_EPOCHS epochs of SCHEDULE_STEPS steps from the spec's initial weights."""
    backend = _backend(name)
    model = backend.build(spec, SCHEDULE_STEPS)
    backend.set_weights(model, initial_weights(spec))
    data = backend.to_native(arrays.x_train, arrays.y_train)
    for _ in range(SCHEDULE_EPOCHS):
        backend.train_epoch(model, data, np.arange(N_IMAGES), N_IMAGES // SCHEDULE_STEPS)
    return backend.get_weights(model)


@pytest.mark.parametrize("label", list(SCHEDULE_CASES))
def test_every_schedule_trains_alike(label: str, backends: list[str],
                                     backend_call: Any) -> None:
    """The same epochs under a schedule in every backend (Keras' own schedule object on
    TensorFlow, JAX and PyTorch; the harness's per-step rate in PyTorch): float32, so to the
    tolerance of the optimizers' check above; float64 parity:
    tests/backends/test_schedule_parity.py."""
    from harness.data import load_arrays

    spec = optimizer_spec(label)
    arrays = load_arrays(spec.input, limit=N_IMAGES, limit_test=1)
    trained = {name: backend_call(name, scheduled_epochs, name, spec, arrays)
               for name in backends}
    reference, *others = backends
    for name in others:
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
