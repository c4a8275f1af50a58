"""The PyTorch backend's handles: the model `build` returns and a dataset split on the device.
Their own module, so the backend, its checkpoint, exporter and predictor all import them and
none imports another."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch.utils.hooks import RemovableHandle

from harness.backends.base import FirstSteps
from harness.backends.pytorch.builder import SpecNet
from harness.spec import ModelSpec


@dataclass
class TorchModel:
    """The handle `build` returns."""

    spec: ModelSpec
    net: SpecNet
    optimizer: torch.optim.Optimizer
    steps: int = 0  # optimizer steps taken (Keras' `iterations`)
    # of one training epoch: what a schedule counted in epochs divides `steps` by
    steps_per_epoch: int | None = None
    layout: str | None = None  # of the first convolution's last output; None without convs
    hooks: list[RemovableHandle] = field(default_factory=list)
    first_steps: FirstSteps = field(default_factory=FirstSteps)  # compile/warm-up, apart


@dataclass(frozen=True)
class TorchData:
    """A dataset split on the device: inputs in the spec's layout, int64 labels."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])
