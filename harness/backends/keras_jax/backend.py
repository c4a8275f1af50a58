"""KerasJaxBackend: Keras 3 on JAX, training through Keras' own train step, compiled with XLA.

Keras on JAX jit-compiles its steps with XLA by default (`jit_compile="auto"` is True there),
and the harness keeps every framework's default: this backend's compile mode is 'xla', recorded
with the time of each first step apart (where the compilation happens).

The step is a pure function of the model's state: as `fit` does, an epoch takes the variables'
values once, passes them through every step and writes them back into the variables after its
last step (outside the timed region). JAX dispatches asynchronously; each timed window of the
epoch (harness.measure.step_windows) ends when its last step's state is ready.

Threads: XLA's CPU runtime sizes its thread pool from the cores the process may run on when the
runtime starts, and has no setting of its own; a budget below that is applied by narrowing the
process's CPU affinity to that many of its cores first (the budget every runtime of the process
gets). TF32: JAX's default matmul and convolution precision, set to float32 unless `tf32`.

Import through `harness.backends.keras_jax`, which selects the JAX backend before keras loads.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import jax
import keras
import numpy as np

from harness.backends.base import BackendUnavailable
from harness.backends.keras_common.backend import (
    FirstSteps,
    KerasBackendBase,
    batch_shape,
)
from harness.measure.environment import thread_budget, usable_cores

# Keras' JAX trainer's state, in the order its train step takes and returns it
_STATE = ("trainable_variables", "non_trainable_variables", "optimizer_variables",
          "metrics_variables")
# JAX's precision of float32 matmuls and convolutions, by `tf32`
_PRECISION = {False: "float32", True: "tensorfloat32"}


def _runtime_started() -> bool:
    from jax._src import xla_bridge

    return bool(xla_bridge._backends)


def _set_threads(threads: int) -> None:
    """Give XLA's CPU runtime `threads` threads: narrow this process's CPU affinity to that many
    of its cores before the runtime starts; warn when that cannot be done (the runtime started
    already, or fewer cores than threads)."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if not _runtime_started() and threads < len(cores):
        os.sched_setaffinity(0, cores[:threads])
        return
    pool = len(cores) or usable_cores()
    if threads != pool:
        why = ("is already initialised in this process" if _runtime_started()
               else "uses one thread per core this process may run on")
        warnings.warn(
            f"JAX's CPU runtime {why}, {pool} threads; cannot change it to {threads}. Timings "
            "will use the existing setting; run in a fresh process to change it.",
            RuntimeWarning, stacklevel=3)


def _device(device: str) -> jax.Device:
    """The JAX device for 'cpu' or 'cuda'; BackendUnavailable when JAX has no GPU."""
    if device == "cpu":
        return jax.devices("cpu")[0]
    try:
        return jax.devices("gpu")[0]
    except RuntimeError as exc:
        raise BackendUnavailable(
            f"JAX sees no GPU ({' '.join(str(exc).split())}; jax {jax.__version__}, default "
            f"backend {jax.default_backend()!r}). Install a CUDA build "
            "(pip install 'jax[cuda12]') or use device='cpu'.") from None


class KerasJaxBackend(KerasBackendBase):
    name: ClassVar[str] = "keras-jax"
    onnx_converter: ClassVar[str] = "Keras on TensorFlow + tf2onnx (from_function)"
    keras_backend: ClassVar[str] = "jax"
    jit_compile: ClassVar[bool] = True  # Keras on JAX's own default: every step through XLA

    def __init__(self, device: str = "cpu", threads: int | None = None,
                 dtype: str = "float32", tf32: bool = False,
                 layout: str = "channels_last") -> None:
        super().__init__(device, threads, dtype, tf32, layout)
        _set_threads(thread_budget(threads))  # before anything below starts the runtime
        if dtype == "float64":
            jax.config.update("jax_enable_x64", True)  # else JAX silently computes in float32
        jax.config.update("jax_default_matmul_precision", _PRECISION[tf32])
        self._jax_device = _device(device)
        self._runtime_cores = usable_cores()  # XLA's CPU pool, sized when the runtime started

    def _scope(self) -> contextlib.AbstractContextManager[Any]:
        return keras.device(self._jax_device)

    def _on_device(self, array: np.ndarray) -> jax.Array:
        return jax.device_put(array, self._jax_device)

    def _gather_split(self, x: jax.Array, index: np.ndarray, sizes: list[int]) -> list[Any]:
        gathered = jax.numpy.take(x, jax.device_put(index, self._jax_device), axis=0)
        parts = jax.numpy.split(gathered, np.cumsum(sizes)[:-1])
        return jax.block_until_ready(parts)  # ready before the clock starts

    def _tensor_device(self, tensor: jax.Array) -> str:
        (device,) = tensor.devices()
        return str(device)

    def _steps(self, model: keras.Model, batches: list[tuple[Any, Any]],
               first: FirstSteps) -> Callable[[int, int], None]:
        # As JAXTrainer.fit: the variables' values, taken once (and the variables emptied:
        # the step donates its state), go through every step.
        start = model._get_jax_state(**dict.fromkeys(_STATE, True), purge_model_variables=True)
        # Committed to the device, as the state every step returns: values the variables got
        # from numpy are not, and a step's first call with each kind compiles anew (the
        # second epoch would recompile every shape).
        start = jax.device_put(start, self._jax_device)
        model._jax_state_synced = False
        model._jax_state = dict(zip(_STATE, start, strict=True))  # synced back whatever happens
        feeds = [batch_shape(batch) for batch in batches]
        feed = iter(batches)  # consecutive ranges: `feed` is at the window's start
        state = start

        def run(begin: int, end: int) -> None:
            nonlocal state
            for shape in feeds[begin:end]:
                _, state = first.call(shape, model.train_function, state, feed)
            # A window ends when its last step's state is computed (JAX dispatches
            # asynchronously); the state is kept after each, as the step donates the last.
            jax.block_until_ready(state)
            model._jax_state = dict(zip(_STATE, state, strict=True))

        return run

    def _end_epoch(self, model: keras.Model) -> None:
        model.jax_state_sync()  # the values back into the model's variables, as fit does
        model._jax_state = None

    def _synchronize(self) -> None:
        """Nothing queued outside an epoch: the gather and every epoch wait for their own."""

    def export_onnx(self, model: keras.Model, path: Path, opset: int) -> None:
        from harness.backends.keras_jax.exporter import export_onnx

        export_onnx(model, path, opset)

    def native_predictor(self, model: keras.Model, x: np.ndarray) -> Callable[[], Any]:
        from harness.backends.keras_jax.inference import native_predictor

        return native_predictor(model, x, self._jax_device)

    def _framework_environment(self) -> dict[str, Any]:
        import jaxlib

        return {
            "jax": jax.__version__,
            "jaxlib": jaxlib.__version__,
            "jax_device": str(self._jax_device),
            "device_name": self._jax_device.device_kind,
            "gpus": [str(d) for d in jax.devices() if d.platform == "gpu"],
            # XLA's CPU thread pool: the cores the process could use when the runtime started;
            # XLA has no inter-op pool of its own
            "intra_op_threads": self._runtime_cores,
            "inter_op_threads": None,
            "matmul_precision": jax.config.jax_default_matmul_precision,
            "tf32": jax.config.jax_default_matmul_precision != _PRECISION[False],
            "x64": bool(jax.config.jax_enable_x64),
        }
