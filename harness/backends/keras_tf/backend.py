"""KerasBackend: Keras 3 on TensorFlow, training through Keras' own compiled train step.

An epoch runs `model.train_function` (what `fit` calls once per batch) over batches that are
already TensorFlow tensors on the backend's device, gathered in the epoch's order before the
clock starts: the timed region holds the optimizer steps and nothing `fit` sets up per call
(data adapter, tf.data pipeline and its threads, callbacks). Weights, losses and metrics are
those of `fit(..., shuffle=False)` over the same batches; evaluate and predict are Keras' own.

Import through `harness.backends.keras_tf`, which selects the TensorFlow backend before keras
loads.
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import keras
import numpy as np
import tensorflow as tf

from harness.backends.base import Backend, BackendUnavailable, EpochResult
from harness.backends.keras_tf.builder import build_model, compile_mode, spec_index
from harness.env import thread_budget
from harness.spec import ModelSpec, Weights
from harness.spec.schema import NUM_CLASSES


@dataclass(frozen=True)
class KerasData:
    """A dataset split in TensorFlow tensors on the backend's device: inputs, one-hot targets
    (as Keras' categorical cross-entropy takes them), and the integer labels in numpy."""

    x: tf.Tensor
    y_onehot: tf.Tensor
    labels: np.ndarray


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


class KerasBackend(Backend):
    name: ClassVar[str] = "keras"
    onnx_converter: ClassVar[str] = "tf2onnx (from_function)"

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
        self._model: keras.Model | None = None  # the last one built, for `environment`
        self._data_device: str | None = None

    def _scope(self) -> contextlib.AbstractContextManager[Any]:
        return tf.device(self._tf_device)

    def seed(self, seed: int) -> None:
        # Seeds Python, NumPy and TF; Keras layers draw their dropout seed at construction,
        # so call this before `build`.
        keras.utils.set_random_seed(seed)

    def build(self, spec: ModelSpec) -> keras.Sequential:
        # Graph mode (tf.function) without XLA on every device, as PyTorch runs eager without
        # torch.compile: Keras' default "auto" would pick XLA wherever a GPU exists.
        with self._scope():
            model = build_model(spec, jit_compile=False, dtype=self.dtype)
        self._model = model
        return model

    def set_weights(self, model: keras.Model, weights: Weights) -> None:
        expected = set(_variables(model))
        missing, extra = expected - set(weights), set(weights) - expected
        if missing or extra:
            raise KeyError(f"weights do not match the model: missing {sorted(missing)}, "
                           f"unexpected {sorted(extra)}")
        for key, variable in _variables(model).items():
            value = np.asarray(weights[key], dtype=variable.dtype)
            if tuple(value.shape) != tuple(variable.shape):
                raise ValueError(f"{key}: shape {value.shape} != model's {tuple(variable.shape)}")
            variable.assign(value)

    def get_weights(self, model: keras.Model) -> Weights:
        return {key: np.array(v.numpy())
                for key, v in _variables(model).items()}

    def count_params(self, model: keras.Model) -> tuple[int, int]:
        def size(variables: list[Any]) -> int:
            return sum(int(np.prod(v.shape)) for v in variables)

        return size(model.trainable_weights), size(model.non_trainable_weights)

    def to_native(self, x: np.ndarray, y: np.ndarray) -> KerasData:
        labels = np.asarray(y, dtype=np.int64)
        onehot = np.eye(NUM_CLASSES, dtype=np.float32)[labels]
        with self._scope():
            # identity: a copy made on the device, whatever tf.constant placed the value on
            inputs = tf.identity(tf.constant(np.ascontiguousarray(x, dtype=self.dtype)))
            targets = tf.identity(tf.constant(onehot.astype(self.dtype)))
        self._data_device = inputs.device.rsplit("device:", 1)[-1]  # 'CPU:0', 'GPU:0'
        return KerasData(inputs, targets, labels)

    def _epoch_batches(self, data: KerasData, order: np.ndarray,
                       batch_size: int) -> list[tuple[tf.Tensor, tf.Tensor]]:
        """The epoch's (inputs, targets) batches in `order`, gathered on the device; the last
        batch may be partial, as `fit` makes it."""
        n = len(order)
        sizes = [batch_size] * (n // batch_size) + ([n % batch_size] if n % batch_size else [])
        if not sizes:
            return []
        with self._scope():
            index = tf.constant(np.asarray(order, dtype=np.int64))
            inputs = tf.split(tf.gather(data.x, index), sizes)
            targets = tf.split(tf.gather(data.y_onehot, index), sizes)
        return list(zip(inputs, targets, strict=True))

    def train_epoch(self, model: keras.Model, data: KerasData, order: np.ndarray,
                    batch_size: int) -> EpochResult:
        batches = self._epoch_batches(data, order, batch_size)
        # What `fit` does per epoch around its steps: the compiled step function (made once
        # per model) and metrics reset, so loss and accuracy cover this epoch only.
        model.make_train_function()
        model.reset_metrics()
        feed = iter(batches)  # a Python iterator: `train_function` takes one batch per call
        self._synchronize()  # the gather is not part of the epoch's time
        start = time.perf_counter()
        with self._scope():
            for _ in batches:
                model.train_function(feed)
        self._synchronize()
        seconds = time.perf_counter() - start
        # loss: mean over the epoch weighted by batch size, as fit's history reports it
        metrics = model.get_metrics_result()
        return EpochResult(loss=float(metrics["loss"]), accuracy=float(metrics["accuracy"]),
                           seconds=seconds)

    def _synchronize(self) -> None:
        """Wait for queued GPU kernels (TensorFlow's CPU execution is synchronous)."""
        if self.device == "cuda":
            tf.test.experimental.sync_devices()

    def evaluate(self, model: keras.Model, data: KerasData, batch_size: int) -> tuple[float, float]:
        with self._scope():
            result = model.evaluate(data.x, data.y_onehot, batch_size=batch_size, verbose=0,
                                    return_dict=True)
        return float(result["loss"]), float(result["accuracy"])

    def predict(self, model: keras.Model, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        with self._scope():
            probs = model.predict(np.asarray(x, dtype=self.dtype), batch_size=batch_size,
                                  verbose=0)
        return np.asarray(probs, dtype=np.float32)

    def export_onnx(self, model: keras.Model, path: Path, opset: int) -> None:
        from harness.backends.keras_tf.exporter import export_onnx

        with self._scope():
            export_onnx(model, path, opset)

    def native_predictor(self, model: keras.Model, x: np.ndarray) -> Callable[[], Any]:
        from harness.backends.keras_tf.inference import native_predictor

        return native_predictor(model, x, self._tf_device)

    def compiled(self, model: keras.Model) -> keras.Model:
        """A twin of `model` compiled with jit_compile=True: `fit`'s train step, `predict` and
        the native predictor run through XLA."""
        with self._scope():
            twin = keras.models.clone_model(model)
            twin.set_weights(model.get_weights())
            optimizer = model.optimizer.from_config(model.optimizer.get_config())
            twin.compile(optimizer=optimizer, loss=model.loss, metrics=["accuracy"],
                         jit_compile=True)
        self._model = twin
        return twin

    def save(self, model: keras.Model, directory: Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "model.keras"
        model.save(path)
        return path

    def compile_mode(self, model: keras.Model | None = None) -> str | None:
        """'xla' or 'graph' for `model` (default: the last model built), None before any build."""
        model = model if model is not None else self._model
        return compile_mode(model) if model is not None else None

    def environment(self) -> dict[str, Any]:
        threading = tf.config.threading
        return {
            "framework": "keras",
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "keras_backend": keras.backend.backend(),
            "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
            "gpu_names": _gpu_names(),
            "device": self.device,
            "tf_device": self._tf_device,
            # as the runtime holds them (0 would mean TF's default, all logical cores)
            "intra_op_threads": threading.get_intra_op_parallelism_threads(),
            "inter_op_threads": threading.get_inter_op_parallelism_threads(),
            "cpu_count": os.cpu_count(),
            "compile_mode": self.compile_mode(),
            "tf32": tf.config.experimental.tensor_float_32_execution_enabled(),
            "layout": _conv_layout(self._model),
            "data_device": self._data_device,
            "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on for x86)"),
        }


def _variables(model: keras.Model) -> dict[str, Any]:
    """Canonical key -> Keras variable. Keras' own layouts already are the canonical ones."""
    return {f"{spec_index(layer)}.{variable.name}": variable
            for layer in model.layers for variable in layer.weights}


def _conv_layout(model: keras.Model | None) -> str | None:
    """The data format the model's convolutions declare (Keras' tensors are NHWC; TensorFlow's
    GPU layout optimizer may still transpose inside a graph); None without a convolution."""
    formats = {layer.data_format for layer in (model.layers if model is not None else [])
               if isinstance(layer, keras.layers.Conv2D)}
    return ", ".join(sorted(formats)) or None


def _gpu_names() -> list[str]:
    names = []
    for gpu in tf.config.list_physical_devices("GPU"):
        with contextlib.suppress(Exception):  # details are best effort, never fatal
            names.append(str(tf.config.experimental.get_device_details(gpu).get("device_name")))
    return names
