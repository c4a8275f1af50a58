"""Replayable exports: inputs and expected outputs as ONNX TensorProto files beside a model.

The layout of ONNX's backend test data, which ONNX Runtime's `onnx_test_runner` and any ONNX
consumer read: a folder holding one `model.onnx` and `test_data_set_0/input_0.pb`,
`output_0.pb`. A file of another name (`harness bench` writes `<spec>.<backend>.onnx`, several
to a folder) gets its data in `<name>.test_data/test_data_set_0/` instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from harness.backends.onnx_io import INPUT_NAME, OUTPUT_NAME
from harness.records.folders import ONNX_FILE

TEST_DATA_SET = "test_data_set_0"
REPLAY_IMAGES = 8  # test images per replay file: enough to show a wrong batch dimension


def replay_dir(onnx_path: Path) -> Path:
    """Where the test data of the model file `onnx_path` lies."""
    onnx_path = Path(onnx_path)
    if onnx_path.name == ONNX_FILE:
        return onnx_path.parent / TEST_DATA_SET
    return onnx_path.parent / f"{onnx_path.name}.test_data" / TEST_DATA_SET


def write_replay(onnx_path: Path, inputs: np.ndarray, outputs: np.ndarray) -> Path:
    """Write `inputs` and the `outputs` a model gave for them as input_0.pb / output_0.pb,
    named like the model's input and output; return the folder."""
    from onnx import numpy_helper

    folder = replay_dir(onnx_path)
    folder.mkdir(parents=True, exist_ok=True)
    for name, tensor_name, array in (("input_0.pb", INPUT_NAME, inputs),
                                     ("output_0.pb", OUTPUT_NAME, outputs)):
        tensor = numpy_helper.from_array(np.ascontiguousarray(array, dtype=np.float32),
                                         name=tensor_name)
        (folder / name).write_bytes(tensor.SerializeToString())
    return folder


def write_framework_replay(backend: Any, model: Any, onnx_path: Path, x: np.ndarray) -> Path:
    """Replay data of an export: the first REPLAY_IMAGES of `x` and the framework's own
    outputs for them (what the exported file must reproduce)."""
    inputs = x[:REPLAY_IMAGES]
    return write_replay(onnx_path, inputs, backend.predict(model, inputs))


def read_replay(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, expected outputs) of a test_data_set folder, read with onnx.numpy_helper."""
    import onnx
    from onnx import numpy_helper

    arrays = []
    for name in ("input_0.pb", "output_0.pb"):
        tensor = onnx.TensorProto()
        tensor.ParseFromString((Path(folder) / name).read_bytes())
        arrays.append(numpy_helper.to_array(tensor))
    return arrays[0], arrays[1]
