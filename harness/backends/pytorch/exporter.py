"""PyTorch -> ONNX through torch.onnx's dynamo exporter (needs onnxscript).

The batch dimension is declared dynamic and traced at size 2: a dimension traced at size 1
can be specialised (frozen) by the exporter.
"""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path

import torch

from harness.backends.pytorch.backend import TorchModel
from harness.onnx_io import BATCH_DIM, INPUT_NAME, OUTPUT_NAME, standardize_interface


@contextlib.contextmanager
def _quiet_exporter():
    """The exporter prints progress and logs warnings about optional packages (torchvision)."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)


def export_onnx(model: TorchModel, path: Path, opset: int) -> None:
    import onnx

    net = model.net
    was_training = net.training
    net.eval()
    device = next(net.parameters()).device
    example = torch.zeros(2, *model.spec.input.shape, device=device)
    try:
        with _quiet_exporter():
            program = torch.onnx.export(
                net, (example,), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                opset_version=opset, dynamo=True, verbose=False,
                dynamic_shapes=({0: torch.export.Dim(BATCH_DIM)},))
    finally:
        net.train(was_training)
    onnx.save(standardize_interface(program.model_proto), str(path))
