"""PyTorch -> ONNX through torch.onnx's dynamo exporter (needs onnxscript).

The batch dimension is declared dynamic and traced at size 2: a dimension traced at size 1
can be specialised (frozen) by the exporter. `export_module` serves any nn.Module taking one
input, Keras 3 on PyTorch's models included (harness.backends.keras_torch).
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch

from harness.backends.onnx_io import BATCH_DIM, INPUT_NAME, OUTPUT_NAME, standardize_interface
from harness.backends.pytorch.model import TorchModel


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The exporter prints progress and logs warnings about optional packages (torchvision)."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)


def export_module(module: torch.nn.Module, input_shape: Sequence[int], device: torch.device,
                  path: Path, opset: int) -> None:
    """Write `module` (in eval mode for the export, its mode restored after) as ONNX with the
    harness's interface: one input of shape (batch, *input_shape), one output."""
    import onnx

    was_training = module.training
    module.eval()
    example = torch.zeros(2, *input_shape, device=device)
    try:
        with _quiet_exporter():
            program = torch.onnx.export(
                module, (example,), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                opset_version=opset, dynamo=True, verbose=False,
                dynamic_shapes=({0: torch.export.Dim(BATCH_DIM)},))
    finally:
        module.train(was_training)
    onnx.save(standardize_interface(program.model_proto), str(path))


def warm_up(opset: int) -> None:
    """Export a one-layer module: the first export in a process loads and builds what later
    ones reuse (about 2 s on a CPU core), so a warm job server pays it once for its jobs."""
    with tempfile.TemporaryDirectory(prefix="harness-warm-up-") as folder:
        export_module(torch.nn.Linear(4, 2), (4,), torch.device("cpu"),
                      Path(folder) / "warm_up.onnx", opset)


def export_onnx(model: TorchModel, path: Path, opset: int) -> None:
    net = model.net
    export_module(net, model.spec.input.shape, next(net.parameters()).device, path, opset)
