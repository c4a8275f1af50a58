"""Tiny specs written here (a 2-layer MLP, a one-convolution CNN) and their float32 exports, so
the variant tests run in seconds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

TRAIN = """train:
  optimizer: {name: sgd, learning_rate: 0.01, momentum: 0.0, nesterov: false}
  loss: categorical_crossentropy
  batch_size: 32
  epochs: 1
  seed: 0
  shuffle: true
  validation: none
"""
SPECS = {
    "tiny_mlp": """name: tiny_mlp
input: {dataset: mnist, shape: [784], scale: 255.0}
layers:
  - {type: dense, units: 16, activation: relu}
  - {type: dense, units: 10, activation: softmax}
""",
    "tiny_cnn": """name: tiny_cnn
input: {dataset: mnist, shape: [28, 28, 1], scale: 255.0}
layers:
  - {type: conv2d, filters: 4, kernel_size: 3, activation: relu}
  - {type: maxpool2d, pool_size: 2}
  - {type: flatten}
  - {type: dense, units: 10, activation: softmax}
""",
}


@pytest.fixture(scope="session")
def spec_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("specs")
    paths = {}
    for name, text in SPECS.items():
        paths[name] = folder / f"{name}.yaml"
        paths[name].write_text(text + TRAIN, encoding="utf-8")
    return paths


@pytest.fixture(scope="session")
def exports(spec_files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
            ) -> dict[str, Path]:
    """Each tiny spec's initial weights exported through PyTorch and checked."""
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    from harness.backends import get_backend
    from harness.export.driver import weights_source
    from harness.latency.bench import export_checked
    from harness.latency.native import build_model

    folder = tmp_path_factory.mktemp("exports")
    backend = get_backend("torch", threads=1)
    paths = {}
    for name, spec_file in spec_files.items():
        source = weights_source(spec_file, None)
        paths[name] = folder / f"{name}.torch.onnx"
        export_checked(backend, build_model(backend, source), source, paths[name])
    return paths


@pytest.fixture(scope="session")
def trained_run(spec_files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny_mlp trained briefly: an accuracy well above chance, so a broken variant shows."""
    pytest.importorskip("torch")
    from harness.training import TrainConfig, train_and_evaluate

    out = tmp_path_factory.mktemp("trained")
    train_and_evaluate(spec_files["tiny_mlp"], TrainConfig(
        backend="torch", epochs=2, limit=3000, limit_test=100, threads=1), out_dir=out)
    return out


def always_class_zero(source: Path, out: Path, calibration: object) -> dict[str, str]:
    """A variant builder broken on purpose: the output layer's bias drowns every input, so
    the model always answers class 0."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(source))
    bias = next(init for init in model.graph.initializer if list(init.dims) == [10])
    values = np.zeros(10, dtype=np.float32)
    values[0] = 1000.0
    bias.CopyFrom(numpy_helper.from_array(values, bias.name))
    onnx.save(model, str(out))
    return {"weights": "broken on purpose"}
