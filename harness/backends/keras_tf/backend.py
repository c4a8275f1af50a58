"""KerasBackend: the idiomatic Keras 3 loop (compile + fit/evaluate/predict) on TensorFlow.

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
from harness.spec import ModelSpec, Weights
from harness.spec.schema import NUM_CLASSES


@dataclass(frozen=True)
class KerasData:
    """A dataset split as `fit` consumes it: inputs, one-hot float32 targets, integer labels."""

    x: np.ndarray
    y_onehot: np.ndarray
    labels: np.ndarray


def _set_threads(threads: int) -> None:
    """Pin TF's thread pools; they are fixed once the runtime starts, so warn if too late."""
    setters = (
        ("intra", tf.config.threading.get_intra_op_parallelism_threads,
         tf.config.threading.set_intra_op_parallelism_threads),
        ("inter", tf.config.threading.get_inter_op_parallelism_threads,
         tf.config.threading.set_inter_op_parallelism_threads),
    )
    for label, get, set_ in setters:
        try:
            set_(threads)
        except RuntimeError:
            current = get()
            warnings.warn(
                f"TensorFlow's runtime is already initialised in this process with {label}-op "
                f"threads = {current or 'default (all cores)'}; cannot change it to {threads}. "
                "Timings will use the existing setting; run in a fresh process to change it.",
                RuntimeWarning, stacklevel=3,
            )


def _hide_gpus() -> None:
    """Make TF place nothing on a GPU. Too late once the runtime started; tf.device covers it."""
    with contextlib.suppress(RuntimeError):
        tf.config.set_visible_devices([], "GPU")


def _require_gpu() -> None:
    if tf.config.list_physical_devices("GPU"):
        return
    info = tf.sysconfig.get_build_info()
    raise BackendUnavailable(
        "TensorFlow sees no GPU: tf.config.list_physical_devices('GPU') == [] "
        f"(TensorFlow {tf.__version__}, built with CUDA: {tf.test.is_built_with_cuda()}, "
        f"CUDA {info.get('cuda_version', 'n/a')}, cuDNN {info.get('cudnn_version', 'n/a')}; "
        f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', '<unset>')}). "
        "Install a CUDA build (pip install 'tensorflow[and-cuda]') or use device='cpu'."
    )


class KerasBackend(Backend):
    name: ClassVar[str] = "keras"
    onnx_converter: ClassVar[str] = "tf2onnx (from_function)"

    def __init__(self, device: str = "cpu", threads: int | None = None) -> None:
        super().__init__(device, threads)
        if threads is not None:
            _set_threads(threads)  # before anything below can start the TF runtime
        if device == "cpu":
            _hide_gpus()
        else:
            _require_gpu()
        self._tf_device = "/CPU:0" if device == "cpu" else "/GPU:0"
        self._compile_mode: str | None = None

    def _scope(self) -> contextlib.AbstractContextManager[Any]:
        return tf.device(self._tf_device)

    def seed(self, seed: int) -> None:
        # Seeds Python, NumPy and TF; Keras layers draw their dropout seed at construction,
        # so call this before `build`.
        keras.utils.set_random_seed(seed)

    def build(self, spec: ModelSpec) -> keras.Sequential:
        # Keras' "auto" picks XLA when *any* non-CPU device exists physically, even if hidden;
        # on device 'cpu' we pin what it picks on a CPU-only machine so CPU runs are comparable.
        jit: bool | str = False if self.device == "cpu" else "auto"
        with self._scope():
            model = build_model(spec, jit_compile=jit)
        self._compile_mode = compile_mode(model)
        return model

    def set_weights(self, model: keras.Model, weights: Weights) -> None:
        expected = set(_variables(model))
        missing, extra = expected - set(weights), set(weights) - expected
        if missing or extra:
            raise KeyError(f"weights do not match the model: missing {sorted(missing)}, "
                           f"unexpected {sorted(extra)}")
        for key, variable in _variables(model).items():
            value = np.asarray(weights[key], dtype=np.float32)
            if tuple(value.shape) != tuple(variable.shape):
                raise ValueError(f"{key}: shape {value.shape} != model's {tuple(variable.shape)}")
            variable.assign(value)

    def get_weights(self, model: keras.Model) -> Weights:
        return {key: np.array(v.numpy(), dtype=np.float32)
                for key, v in _variables(model).items()}

    def count_params(self, model: keras.Model) -> tuple[int, int]:
        def size(variables: list[Any]) -> int:
            return sum(int(np.prod(v.shape)) for v in variables)

        return size(model.trainable_weights), size(model.non_trainable_weights)

    def to_native(self, x: np.ndarray, y: np.ndarray) -> KerasData:
        labels = np.asarray(y, dtype=np.int64)
        onehot = np.eye(NUM_CLASSES, dtype=np.float32)[labels]
        return KerasData(np.ascontiguousarray(x, dtype=np.float32), onehot, labels)

    def train_epoch(self, model: keras.Model, data: KerasData, order: np.ndarray,
                    batch_size: int) -> EpochResult:
        order = np.asarray(order, dtype=np.int64)
        start = time.perf_counter()
        with self._scope():
            # Gathering in `order` and shuffle=False make fit see exactly the given batches.
            x, y = data.x[order], data.y_onehot[order]
            history = model.fit(x, y, batch_size=batch_size, epochs=1, shuffle=False,
                                verbose=0)
        seconds = time.perf_counter() - start
        return EpochResult(loss=float(history.history["loss"][-1]),
                           accuracy=float(history.history["accuracy"][-1]), seconds=seconds)

    def evaluate(self, model: keras.Model, data: KerasData, batch_size: int) -> tuple[float, float]:
        with self._scope():
            result = model.evaluate(data.x, data.y_onehot, batch_size=batch_size, verbose=0,
                                    return_dict=True)
        return float(result["loss"]), float(result["accuracy"])

    def predict(self, model: keras.Model, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        with self._scope():
            probs = model.predict(np.asarray(x, dtype=np.float32), batch_size=batch_size,
                                  verbose=0)
        return np.asarray(probs, dtype=np.float32)

    def export_onnx(self, model: keras.Model, path: Path, opset: int) -> None:
        from harness.backends.keras_tf.exporter import export_onnx

        with self._scope():
            export_onnx(model, path, opset)

    def native_predictor(self, model: keras.Model, x: np.ndarray) -> Callable[[], Any]:
        from harness.backends.keras_tf.inference import native_predictor

        return native_predictor(model, x, self._tf_device)

    def save(self, model: keras.Model, directory: Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "model.keras"
        model.save(path)
        return path

    def compile_mode(self, model: keras.Model | None = None) -> str | None:
        """'xla' or 'graph' for `model` (default: the last model built), None before any build."""
        return compile_mode(model) if model is not None else self._compile_mode

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
            # 0 means TF's default: pools sized by the number of cores.
            "intra_op_threads": threading.get_intra_op_parallelism_threads(),
            "inter_op_threads": threading.get_inter_op_parallelism_threads(),
            "cpu_count": os.cpu_count(),
            "compile_mode": self._compile_mode,
            "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on for x86)"),
        }


def _variables(model: keras.Model) -> dict[str, Any]:
    """Canonical key -> Keras variable. Keras' own layouts already are the canonical ones."""
    return {f"{spec_index(layer)}.{variable.name}": variable
            for layer in model.layers for variable in layer.weights}


def _gpu_names() -> list[str]:
    names = []
    for gpu in tf.config.list_physical_devices("GPU"):
        with contextlib.suppress(Exception):  # details are best effort, never fatal
            names.append(str(tf.config.experimental.get_device_details(gpu).get("device_name")))
    return names
