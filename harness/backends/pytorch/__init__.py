"""PyTorch backend: eager nn.Module built from a spec, trained with Keras 3's maths."""

from harness.backends.pytorch.backend import TorchBackend
from harness.backends.pytorch.builder import SpecNet, build_module
from harness.backends.pytorch.info import INFO
from harness.backends.pytorch.model import TorchData, TorchModel
from harness.backends.pytorch.optimizers import make_optimizer

__all__ = ["INFO", "SpecNet", "TorchBackend", "TorchData", "TorchModel", "build_module",
           "make_optimizer"]
