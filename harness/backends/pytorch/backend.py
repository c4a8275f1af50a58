"""TorchBackend: an idiomatic eager PyTorch loop with Keras' training maths.

The loss is F.cross_entropy on the final softmax's logits: Keras 3 on TensorFlow also computes
categorical cross-entropy from those logits (`_get_logits` in keras' TF backend), not from the
probabilities. Statistics stay on the device during an epoch; one sync at its end.
"""

from __future__ import annotations

import contextlib
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from harness.backends.base import Backend, BackendUnavailable, EpochResult
from harness.backends.pytorch.builder import SpecNet, build_module, get_canonical, set_canonical
from harness.backends.pytorch.optimizers import make_optimizer
from harness.spec import ModelSpec, Weights, initial_weights
from harness.spec.schema import NUM_CLASSES

_STAT_BUFFERS = ("running_mean", "running_var")  # BN statistics: Keras' non-trainable weights


@dataclass
class TorchModel:
    """The handle `build` returns."""

    spec: ModelSpec
    net: SpecNet
    optimizer: torch.optim.Optimizer
    steps: int = 0  # optimizer steps taken (Keras' `iterations`)


@dataclass(frozen=True)
class TorchData:
    """A dataset split on the device: inputs in the spec's layout, int64 labels."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])


def _set_threads(threads: int) -> None:
    torch.set_num_threads(threads)
    # Fixed once torch ran any parallel work; then the existing setting stays.
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(threads)


def _cpu_name() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


class TorchBackend(Backend):
    name: ClassVar[str] = "torch"
    onnx_converter: ClassVar[str] = "torch.onnx (dynamo)"

    def __init__(self, device: str = "cpu", threads: int | None = None) -> None:
        super().__init__(device, threads)
        if device == "cuda" and not torch.cuda.is_available():
            raise BackendUnavailable(
                f"PyTorch sees no usable CUDA device: torch.cuda.is_available() is False "
                f"(torch {torch.__version__}, built with CUDA {torch.version.cuda or 'none'}, "
                f"{torch.cuda.device_count()} device(s) found). Install a CUDA build of torch "
                "or use device='cpu'."
            )
        if threads is not None:
            _set_threads(threads)
        self._device = torch.device(device)

    def seed(self, seed: int) -> None:
        torch.manual_seed(seed)  # also seeds every CUDA device

    def build(self, spec: ModelSpec) -> TorchModel:
        net = build_module(spec)
        # Start from the spec's initializers (torch's defaults differ); the same arrays Keras
        # gets from `initial_weights`, so a caller's set_weights only overrides them.
        set_canonical(spec, net, initial_weights(spec))
        net.to(self._device)
        return TorchModel(spec, net, make_optimizer(net.parameters(), spec.train.optimizer))

    def set_weights(self, model: TorchModel, weights: Weights) -> None:
        set_canonical(model.spec, model.net, weights)

    def get_weights(self, model: TorchModel) -> Weights:
        return get_canonical(model.spec, model.net)

    def count_params(self, model: TorchModel) -> tuple[int, int]:
        trainable = sum(p.numel() for p in model.net.parameters() if p.requires_grad)
        statistics = sum(b.numel() for name, b in model.net.named_buffers()
                         if name.rsplit(".", 1)[-1] in _STAT_BUFFERS)
        return trainable, statistics

    def to_native(self, x: np.ndarray, y: np.ndarray) -> TorchData:
        xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self._device)
        yt = torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64)).to(self._device)
        return TorchData(xt, yt)

    def train_epoch(self, model: TorchModel, data: TorchData, order: np.ndarray,
                    batch_size: int) -> EpochResult:
        net, optimizer = model.net, model.optimizer
        net.train()
        start = time.perf_counter()
        index = torch.from_numpy(np.asarray(order, dtype=np.int64)).to(self._device)
        loss_sum = torch.zeros((), dtype=torch.float64, device=self._device)
        correct = torch.zeros((), dtype=torch.int64, device=self._device)
        for first in range(0, len(index), batch_size):
            batch = index[first:first + batch_size]
            xb, yb = data.x[batch], data.y[batch]
            logits = net.logits(xb)
            loss = F.cross_entropy(logits, yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            # Accumulated on the device: no per-step host sync.
            loss_sum += loss.detach().double() * len(batch)
            correct += (logits.detach().argmax(dim=1) == yb).sum()
        self._synchronize()
        seconds = time.perf_counter() - start
        batches = -(-len(index) // batch_size)
        model.steps += batches
        count = max(len(index), 1)
        return EpochResult(loss=loss_sum.item() / count, accuracy=correct.item() / count,
                           seconds=seconds)

    def evaluate(self, model: TorchModel, data: TorchData, batch_size: int) -> tuple[float, float]:
        net = model.net
        net.eval()
        loss_sum = torch.zeros((), dtype=torch.float64, device=self._device)
        correct = torch.zeros((), dtype=torch.int64, device=self._device)
        with torch.inference_mode():
            for first in range(0, len(data), batch_size):
                xb, yb = data.x[first:first + batch_size], data.y[first:first + batch_size]
                logits = net.logits(xb)
                loss_sum += F.cross_entropy(logits, yb, reduction="sum").double()
                correct += (logits.argmax(dim=1) == yb).sum()
        count = max(len(data), 1)
        return loss_sum.item() / count, correct.item() / count

    def predict(self, model: TorchModel, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        net = model.net
        net.eval()
        inputs = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self._device)
        with torch.inference_mode():
            probs = [net(inputs[first:first + batch_size])
                     for first in range(0, len(inputs), batch_size)]
        if not probs:
            return np.zeros((0, NUM_CLASSES), np.float32)
        return torch.cat(probs).cpu().numpy().astype(np.float32, copy=False)

    def export_onnx(self, model: TorchModel, path: Path, opset: int) -> None:
        from harness.backends.pytorch.exporter import export_onnx

        export_onnx(model, path, opset)

    def native_predictor(self, model: TorchModel, x: np.ndarray) -> Callable[[], torch.Tensor]:
        from harness.backends.pytorch.inference import native_predictor

        return native_predictor(model, x, self._device)

    def save(self, model: TorchModel, directory: Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "model.pt"
        torch.save(model.net.state_dict(), path)
        return path

    def environment(self) -> dict[str, Any]:
        cuda = self.device == "cuda"
        return {
            "framework": "torch",
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available()
            else None,
            "device": self.device,
            "device_name": torch.cuda.get_device_name(self._device) if cuda else _cpu_name(),
            "threads": torch.get_num_threads(),
            "intra_op_threads": torch.get_num_threads(),
            "inter_op_threads": torch.get_num_interop_threads(),
            "compile_mode": "eager",
            # TF32 (lower-precision fp32 maths on Ampere+ GPUs) changes results; record it.
            "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
            "tf32_cudnn": torch.backends.cudnn.allow_tf32,
        }

    def _synchronize(self) -> None:
        if self._device.type == "cuda":
            torch.cuda.synchronize(self._device)
