"""TorchBackend: an idiomatic eager PyTorch loop with Keras' training maths.

The loss is F.cross_entropy on the final softmax's logits: Keras 3 on TensorFlow also computes
categorical cross-entropy from those logits (`_get_logits` in keras' TF backend), not from the
probabilities. Statistics stay on the device during an epoch; one sync at its end.

An epoch's batches are gathered on the device, in the epoch's order, before the clock starts:
the timed region holds the optimizer steps only, as in the Keras backend. It is timed in
windows (harness.measure.step_windows), the device synchronised at each boundary.

Memory layout of image CNNs is a choice (`layout`), not an accident of the NHWC->NCHW permute
(a view whose strides are channels-last): "channels_last" converts the convolution weights and
lays each input out channels-last, "nchw" keeps both contiguous NCHW. The layout the first
convolution's output really has is read back from its strides into `TorchModel.layout`.
"""

from __future__ import annotations

import contextlib
import platform
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from harness.backends.base import (
    Backend,
    BackendUnavailable,
    EpochResult,
    Evaluation,
)
from harness.backends.pytorch import checkpoint
from harness.backends.pytorch.builder import build_module, get_canonical, set_canonical
from harness.backends.pytorch.model import TorchData, TorchModel
from harness.backends.pytorch.optimizers import make_optimizer, set_learning_rate
from harness.measure.environment import thread_budget
from harness.measure.step_windows import plan_windows, time_windows
from harness.spec import ModelSpec, Weights, initial_weights
from harness.spec.schema import NUM_CLASSES

_STAT_BUFFERS = ("running_mean", "running_var")  # BN statistics: Keras' non-trainable weights
_MEMORY_FORMATS = {"channels_last": torch.channels_last, "nchw": torch.contiguous_format}


def set_threads(threads: int) -> None:
    """The harness's budget: `threads` intra-op, 1 inter-op (as every runtime gets)."""
    torch.set_num_threads(threads)
    # Fixed once torch ran any inter-op work; then the existing setting stays (and is recorded).
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(1)


def set_tf32(enabled: bool) -> None:
    """Process-wide, for float32 matmuls and cuDNN convolutions alike (torch's own defaults
    differ: off for matmuls, on for convolutions)."""
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled


def _memory_layout(activation: torch.Tensor) -> str:
    """'nchw' or 'channels_last', as a 4-d activation's strides lay it out."""
    if activation.is_contiguous():
        return "nchw"
    if activation.is_contiguous(memory_format=torch.channels_last):
        return "channels_last"
    return "strided"


def _in_layout(x: torch.Tensor, memory_format: torch.memory_format) -> torch.Tensor:
    """`x` (N, C, H, W) with `memory_format`'s own strides. With one channel, NCHW and NHWC
    memory are the same bytes and both contiguity checks pass; only the strides tell the
    convolution which kernels to run, so they are set explicitly (a view, no copy)."""
    if not x.is_contiguous(memory_format=memory_format):
        return x.contiguous(memory_format=memory_format)
    n, c, h, w = x.shape
    strides = ((c * h * w, h * w, w, 1) if memory_format == torch.contiguous_format
               else (h * w * c, 1, w * c, c))
    return x.as_strided((n, c, h, w), strides, x.storage_offset())


def _attach_layout_hooks(model: TorchModel, memory_format: torch.memory_format) -> None:
    """Image CNNs: every forward lays its input out in `memory_format`, and the first
    convolution's output layout is read back into `model.layout`."""
    convs = [module for module in model.net.modules() if isinstance(module, nn.Conv2d)]
    if not convs:
        return

    def lay_out(_module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
        if args[0].dim() != 4:  # a flat input or sequence made an image by a reshape layer
            return args
        return (_in_layout(args[0], memory_format), *args[1:])

    def read_back(_module: nn.Module, _args: Any, output: torch.Tensor) -> None:
        model.layout = _memory_layout(output)

    model.hooks = [model.net.body.register_forward_pre_hook(lay_out),
                   convs[0].register_forward_hook(read_back)]


def _compiler_problem(device: str) -> str | None:
    """Why torch.compile (inductor) cannot run on `device` here, or None: it needs Dynamo
    support for this Python, and a C++ compiler on the CPU or Triton on CUDA."""
    import torch._dynamo

    if not torch._dynamo.is_dynamo_supported():
        return (f"torch.compile is not supported with torch {torch.__version__} on Python "
                f"{platform.python_version()} ({platform.system()})")
    if device == "cuda":
        from torch.utils._triton import has_triton

        return None if has_triton() else "torch.compile (inductor) on CUDA needs Triton"
    from torch._inductor.cpp_builder import get_cpp_compiler

    try:
        get_cpp_compiler()
    except Exception as exc:  # noqa: BLE001 - inductor's own check; its message says why
        return f"torch.compile (inductor) on the CPU needs a C++ compiler: {exc}"
    return None


def require_cuda() -> None:
    """BackendUnavailable unless this torch can use a CUDA device."""
    if not torch.cuda.is_available():
        raise BackendUnavailable(
            f"PyTorch sees no usable CUDA device: torch.cuda.is_available() is False "
            f"(torch {torch.__version__}, built with CUDA {torch.version.cuda or 'none'}, "
            f"{torch.cuda.device_count()} device(s) found). Install a CUDA build of torch "
            "or use device='cpu'."
        )


def torch_environment(device: torch.device) -> dict[str, Any]:
    """Versions, device, threads and TF32 as torch holds them (read back, not the options)."""
    cuda = device.type == "cuda"
    return {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available()
        else None,
        "device_name": torch.cuda.get_device_name(device) if cuda else _cpu_name(),
        "threads": torch.get_num_threads(),
        "intra_op_threads": torch.get_num_threads(),
        "inter_op_threads": torch.get_num_interop_threads(),
        # TF32 (lower-precision fp32 maths on Ampere+ GPUs) changes results; record it.
        "tf32": torch.backends.cuda.matmul.allow_tf32 or torch.backends.cudnn.allow_tf32,
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        "tf32_cudnn": torch.backends.cudnn.allow_tf32,
    }


def _compile_mode(model: TorchModel | None) -> str:
    """'torch.compile' for a module compiled in place (`nn.Module.compile`), else 'eager'."""
    compiled = model is not None and getattr(model.net, "_compiled_call_impl", None) is not None
    return "torch.compile" if compiled else "eager"


@contextlib.contextmanager
def _layout_hooks_removed(model: TorchModel,
                          memory_format: torch.memory_format) -> Iterator[None]:
    """The exporter traces the plain function: memory layout is the runtime's business."""
    for handle in model.hooks:
        handle.remove()
    try:
        yield
    finally:
        _attach_layout_hooks(model, memory_format)


def _to_numpy(probabilities: list[torch.Tensor]) -> np.ndarray:
    """Batches of class probabilities as one float32 array on the host."""
    if not probabilities:
        return np.zeros((0, NUM_CLASSES), np.float32)
    return torch.cat(probabilities).cpu().numpy().astype(np.float32, copy=False)


def _cpu_name() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


class TorchBackend(Backend):
    name: ClassVar[str] = "torch"
    onnx_converter: ClassVar[str] = "torch.onnx (dynamo)"

    def __init__(self, device: str = "cpu", threads: int | None = None,
                 dtype: str = "float32", tf32: bool = False,
                 layout: str = "channels_last") -> None:
        super().__init__(device, threads, dtype, tf32, layout)
        if device == "cuda":
            require_cuda()
        set_threads(thread_budget(threads))
        set_tf32(tf32)
        self._device = torch.device(device)
        self._dtype = getattr(torch, dtype)
        self._memory_format = _MEMORY_FORMATS[layout]
        self._model: TorchModel | None = None  # the last one built, for `environment`
        self._data_device: str | None = None

    def seed(self, seed: int) -> None:
        torch.manual_seed(seed)  # also seeds every CUDA device

    def build(self, spec: ModelSpec, steps_per_epoch: int | None = None) -> TorchModel:
        net = build_module(spec)
        # Start from the spec's initializers (torch's defaults differ); the same arrays Keras
        # gets from `initial_weights`, so a caller's set_weights only overrides them.
        set_canonical(spec, net, initial_weights(spec))
        # 4-d weights (convolution kernels) in the chosen layout: torch runs channels-last
        # kernels when either the input or the weight is channels-last.
        net.to(self._device, dtype=self._dtype, memory_format=self._memory_format)
        optimizer = make_optimizer(net.parameters(), spec.train.optimizer,
                                   scheduled=spec.train.schedule is not None)
        model = TorchModel(spec, net, optimizer, steps_per_epoch=steps_per_epoch)
        _attach_layout_hooks(model, self._memory_format)
        self._read_back_layout(model)
        self._model = model
        return model

    def _read_back_layout(self, model: TorchModel) -> None:
        """One inference-mode forward of a blank input, so the layout is known before training
        or timing (no statistics or RNG state changes in eval mode)."""
        if not model.hooks:
            return
        net, training = model.net, model.net.training
        net.eval()
        with torch.inference_mode():
            net(torch.zeros(1, *model.spec.input.shape, dtype=self._dtype, device=self._device))
        net.train(training)

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
        xt = torch.from_numpy(np.ascontiguousarray(x, dtype=self.dtype)).to(self._device)
        yt = torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64)).to(self._device)
        if xt.dim() == 4:  # images: NHWC-shaped, in the memory the convolutions want
            xt = _in_layout(xt.permute(0, 3, 1, 2), self._memory_format).permute(0, 2, 3, 1)
        self._data_device = str(xt.device)
        return TorchData(xt, yt)

    def train_epoch(self, model: TorchModel, data: TorchData, order: np.ndarray,
                    batch_size: int) -> EpochResult:
        net, optimizer = model.net, model.optimizer
        net.train()
        index = torch.from_numpy(np.asarray(order, dtype=np.int64)).to(self._device)
        # Gathering keeps the data's memory layout; split gives views.
        batches = list(zip(data.x[index].split(batch_size), data.y[index].split(batch_size),
                           strict=True))
        loss_sum = torch.zeros((), dtype=torch.float64, device=self._device)
        correct = torch.zeros((), dtype=torch.int64, device=self._device)

        def step(xb: torch.Tensor, yb: torch.Tensor) -> None:
            logits = net.logits(xb)
            loss = F.cross_entropy(logits, yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            # the step's lr from the steps taken before it, as Keras' schedule is evaluated
            set_learning_rate(optimizer, model.spec.train, model.steps, model.steps_per_epoch)
            optimizer.step()
            model.steps += 1
            # Accumulated on the device: no per-step host sync.
            loss_sum.add_(loss.detach().double() * len(yb))
            correct.add_((logits.detach().argmax(dim=1) == yb).sum())

        first = model.first_steps
        shapes = [tuple(xb.shape) for xb, _ in batches]
        windows = plan_windows(shapes, first.shapes)

        def run(begin: int, end: int) -> None:
            for (xb, yb), shape in zip(batches[begin:end], shapes[begin:end], strict=True):
                first.call(shape, step, xb, yb)
            self._synchronize()  # a window ends when the device finished its steps

        self._synchronize()  # the gather is not part of the epoch's time
        timing = time_windows(windows, run)
        count = max(len(index), 1)
        return EpochResult.of_windows(loss_sum.item() / count, correct.item() / count, windows,
                                      timing)

    def evaluate(self, model: TorchModel, data: TorchData, batch_size: int) -> Evaluation:
        net = model.net
        net.eval()
        loss_sum = torch.zeros((), dtype=torch.float64, device=self._device)
        correct = torch.zeros((), dtype=torch.int64, device=self._device)
        probabilities = []
        with torch.inference_mode():
            for first in range(0, len(data), batch_size):
                xb, yb = data.x[first:first + batch_size], data.y[first:first + batch_size]
                logits = net.logits(xb)
                loss_sum += F.cross_entropy(logits, yb, reduction="sum").double()
                correct += (logits.argmax(dim=1) == yb).sum()
                probabilities.append(torch.softmax(logits, dim=-1))  # as forward() ends
        count = max(len(data), 1)
        return Evaluation(loss_sum.item() / count, correct.item() / count,
                          _to_numpy(probabilities))

    def predict(self, model: TorchModel, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        net = model.net
        net.eval()
        inputs = torch.from_numpy(np.ascontiguousarray(x, dtype=self.dtype)).to(self._device)
        with torch.inference_mode():
            probs = [net(inputs[first:first + batch_size])
                     for first in range(0, len(inputs), batch_size)]
        return _to_numpy(probs)

    def export_onnx(self, model: TorchModel, path: Path, opset: int) -> None:
        from harness.backends.pytorch.exporter import export_onnx

        with _layout_hooks_removed(model, self._memory_format):
            export_onnx(model, path, opset)

    def native_predictor(self, model: TorchModel, x: np.ndarray) -> Callable[[], torch.Tensor]:
        from harness.backends.pytorch.inference import native_predictor

        return native_predictor(model, x, self._device)

    def compiled(self, model: TorchModel) -> TorchModel:
        """A twin of `model` whose forward (predict, native predictor) and logits (training,
        evaluate) run through torch.compile's default backend, inductor."""
        problem = _compiler_problem(self.device)
        if problem:
            raise BackendUnavailable(problem)
        twin = self.build(model.spec, model.steps_per_epoch)
        self.set_weights(twin, self.get_weights(model))
        twin.net.compile()  # in place: `net(...)` runs compiled, hooks included
        twin.net.logits = torch.compile(twin.net.logits)
        return twin

    def save(self, model: TorchModel, directory: Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "model.pt"
        torch.save(model.net.state_dict(), path)
        return path

    def save_training_state(self, model: TorchModel, path: Path) -> None:
        checkpoint.save_training_state(model, path)

    def load_training_state(self, model: TorchModel, path: Path) -> None:
        checkpoint.load_training_state(model, path)

    def environment(self) -> dict[str, Any]:
        first = self._model.first_steps if self._model is not None else None
        return {
            "framework": "torch",
            "device": self.device,
            **torch_environment(self._device),
            "compile_mode": _compile_mode(self._model),
            # FirstSteps: the first train-step call per batch shape (None: not trained yet)
            "compile_seconds": first.seconds if first and first.shapes else None,
            "layout": self._model.layout if self._model is not None else None,
            "data_device": self._data_device,
        }

    def _synchronize(self) -> None:
        if self._device.type == "cuda":
            torch.cuda.synchronize(self._device)
