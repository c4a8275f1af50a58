"""KerasBackend: Keras 3 on TensorFlow, training through Keras' own compiled train step.

An epoch runs `model.train_function` (what `fit` calls once per batch) over batches that are
already TensorFlow tensors on the backend's device (harness.backends.keras_common.backend):
the timed region holds the optimizer steps and nothing `fit` sets up per call (data adapter,
tf.data pipeline and its threads, callbacks). Here: TensorFlow's threads, devices and TF32.

Import through `harness.backends.keras_tf`, which selects the TensorFlow backend before keras
loads.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import keras
import numpy as np
import tensorflow as tf

from harness.backends.base import BackendUnavailable
from harness.backends.keras_common.backend import (
    FirstSteps,
    KerasBackendBase,
    KerasData,
    each_step,
)
from harness.measure.environment import thread_budget

__all__ = ["KerasBackend", "KerasData"]


def _set_threads(threads: int) -> None:
    """Pin TF's thread pools to the harness's budget: `threads` intra-op, 1 inter-op (as every
    runtime gets). They are fixed once the runtime starts, so warn if too late."""
    setters = (
        ("intra", threads, tf.config.threading.get_intra_op_parallelism_threads,
         tf.config.threading.set_intra_op_parallelism_threads),
        ("inter", 1, tf.config.threading.get_inter_op_parallelism_threads,
         tf.config.threading.set_inter_op_parallelism_threads),
    )
    for label, wanted, get, set_ in setters:
        try:
            set_(wanted)
        except RuntimeError:
            current = get()
            warnings.warn(
                f"TensorFlow's runtime is already initialised in this process with {label}-op "
                f"threads = {current or 'default (all cores)'}; cannot change it to {wanted}. "
                "Timings will use the existing setting; run in a fresh process to change it.",
                RuntimeWarning, stacklevel=3,
            )


def _hide_gpus() -> None:
    """Make TF place nothing on a GPU. Too late once the runtime started; tf.device covers it."""
    with contextlib.suppress(RuntimeError):
        tf.config.set_visible_devices([], "GPU")


def _require_gpu() -> None:
    """A GPU this process's TensorFlow can place work on, else BackendUnavailable. A physical
    GPU is not enough: once a device='cpu' backend hid the GPUs (`_hide_gpus`) they stay hidden
    for the process, and TF would soft-place every '/GPU:0' op on the CPU."""
    physical = tf.config.list_physical_devices("GPU")
    if not physical:
        info = tf.sysconfig.get_build_info()
        raise BackendUnavailable(
            "TensorFlow sees no GPU: tf.config.list_physical_devices('GPU') == [] "
            f"(TensorFlow {tf.__version__}, built with CUDA: {tf.test.is_built_with_cuda()}, "
            f"CUDA {info.get('cuda_version', 'n/a')}, cuDNN {info.get('cudnn_version', 'n/a')}; "
            f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', '<unset>')}). "
            "Install a CUDA build (pip install 'tensorflow[and-cuda]') or use device='cpu'."
        )
    # visible first: listing logical devices starts the runtime, pointless when all are hidden
    visible = tf.config.get_visible_devices("GPU")
    if visible and tf.config.list_logical_devices("GPU"):
        return
    raise BackendUnavailable(
        f"TensorFlow finds {len(physical)} GPU(s) but can use none in this process: "
        f"visible {[d.name for d in visible]}, tf.config.list_logical_devices('GPU') == [] "
        "(an earlier device='cpu' Keras backend in this process hides the GPUs for good once "
        "TensorFlow has started, or the runtime failed to open them). Create the cuda backend "
        "before any cpu one, or run it in a fresh process."
    )


class KerasBackend(KerasBackendBase):
    name: ClassVar[str] = "keras"
    onnx_converter: ClassVar[str] = "tf2onnx (from_function)"
    keras_backend: ClassVar[str] = "tensorflow"
    # Graph mode (tf.function) without XLA on every device, as PyTorch runs eager without
    # torch.compile: Keras' default "auto" would pick XLA wherever a GPU exists.
    jit_compile: ClassVar[bool] = False

    def __init__(self, device: str = "cpu", threads: int | None = None,
                 dtype: str = "float32", tf32: bool = False,
                 layout: str = "channels_last") -> None:
        super().__init__(device, threads, dtype, tf32, layout)
        _set_threads(thread_budget(threads))  # before anything below can start the TF runtime
        # Process-wide; TensorFlow's default is on (torch's is off): one policy for both.
        tf.config.experimental.enable_tensor_float_32_execution(tf32)
        if device == "cpu":
            _hide_gpus()
        else:
            _require_gpu()
        self._tf_device = "/CPU:0" if device == "cpu" else "/GPU:0"

    def _scope(self) -> contextlib.AbstractContextManager[Any]:
        return tf.device(self._tf_device)

    def _on_device(self, array: np.ndarray) -> tf.Tensor:
        # identity: a copy made on the device, whatever tf.constant placed the value on
        return tf.identity(tf.constant(array))

    def _gather_split(self, x: tf.Tensor, index: np.ndarray, sizes: list[int]) -> list[Any]:
        return tf.split(tf.gather(x, tf.constant(index)), sizes)

    def _tensor_device(self, tensor: tf.Tensor) -> str:
        return tensor.device.rsplit("device:", 1)[-1]  # 'CPU:0', 'GPU:0'

    def _build_for_training(self, model: keras.Model, batch: tuple[Any, Any]) -> None:
        """Nothing: on TensorFlow `fit` leaves building to the first traced step (without a
        distribution strategy), and so does the harness."""

    def _steps(self, model: keras.Model, batches: list[tuple[Any, Any]],
               first: FirstSteps) -> Callable[[int, int], None]:
        feed = iter(batches)  # a Python iterator: `train_function` takes one batch per call

        def run(start: int, stop: int) -> None:  # consecutive ranges: `feed` is at `start`
            each_step(batches[start:stop], first, model.train_function, feed)
            self._synchronize()

        return run

    def _synchronize(self) -> None:
        """Wait for queued GPU kernels (TensorFlow's CPU execution is synchronous)."""
        if self.device == "cuda":
            tf.test.experimental.sync_devices()

    def export_onnx(self, model: keras.Model, path: Path, opset: int) -> None:
        from harness.backends.keras_tf.exporter import export_onnx

        with self._scope():
            export_onnx(model, path, opset)

    def native_predictor(self, model: keras.Model, x: np.ndarray) -> Callable[[], Any]:
        from harness.backends.keras_tf.inference import native_predictor

        return native_predictor(model, x, self._tf_device)

    def _framework_environment(self) -> dict[str, Any]:
        threading = tf.config.threading
        return {
            "tensorflow": tf.__version__,
            "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
            "gpu_names": _gpu_names(),
            "tf_device": self._tf_device,
            # as the runtime holds them (0 would mean TF's default, all logical cores)
            "intra_op_threads": threading.get_intra_op_parallelism_threads(),
            "inter_op_threads": threading.get_inter_op_parallelism_threads(),
            "cpu_count": os.cpu_count(),
            "tf32": tf.config.experimental.tensor_float_32_execution_enabled(),
            "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on for x86)"),
        }


def _gpu_names() -> list[str]:
    names = []
    for gpu in tf.config.list_physical_devices("GPU"):
        with contextlib.suppress(Exception):  # details are best effort, never fatal
            names.append(str(tf.config.experimental.get_device_details(gpu).get("device_name")))
    return names
