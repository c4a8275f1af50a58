"""KerasBackendBase: one harness backend on Keras 3, whatever Keras' own backend is.

Building, weights, evaluation, prediction, saving and the shape of an epoch are Keras' own and
the same on TensorFlow, JAX and PyTorch. An epoch runs Keras' compiled train step (what `fit`
calls once per batch) over batches that are already the framework's tensors on the backend's
device, gathered in the epoch's order before the clock starts: the timed region holds the
optimizer steps and nothing `fit` sets up per call (data adapter, pipeline, callbacks), in
windows (harness.measure.step_windows), each ending when the device finished its steps.
Weights, losses and metrics are those of `fit(..., shuffle=False)` over the same batches.

What differs per Keras backend (a subclass each): device placement and threads, how a tensor is
made and gathered, how the train step is called (TensorFlow and PyTorch keep the state in the
variables; JAX passes it through the step and writes it back at the end of the epoch, as `fit`
does), waiting for queued work, ONNX export and the native predictor.
"""

from __future__ import annotations

import contextlib
import weakref
from abc import abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import keras
import numpy as np

from harness.backends.base import (
    Backend,
    BackendUnavailable,
    EpochResult,
    Evaluation,
    FirstSteps,
    KerasBackendConflict,
)
from harness.backends.keras_common import checkpoint
from harness.backends.keras_common.builder import (
    build_model,
    compile_mode,
    keras_variables,
    spec_index,
)
from harness.measure.step_windows import plan_windows, time_windows
from harness.spec import ModelSpec, Weights, initial_weights
from harness.spec.schema import NUM_CLASSES
from harness.spec.shapes import num_classes


@dataclass(frozen=True)
class KerasData:
    """A dataset split in the Keras backend's tensors on the device: inputs, one-hot targets
    (as Keras' categorical cross-entropy takes them), and the integer labels in numpy."""

    x: Any
    y_onehot: Any
    labels: np.ndarray


def batch_sizes(n: int, batch_size: int) -> list[int]:
    """Sizes of an epoch's batches over n samples; the last may be partial, as `fit` makes it."""
    return [batch_size] * (n // batch_size) + ([n % batch_size] if n % batch_size else [])


class KerasBackendBase(Backend):
    """The Keras-generic part of a harness backend on Keras 3. Subclasses name their Keras
    backend and default compile mode and supply the framework-specific hooks below."""

    keras_backend: ClassVar[str]  # keras.backend.backend() this harness backend runs on
    evaluate_gives_probabilities: ClassVar[bool] = False  # Keras' evaluate returns scores only
    jit_compile: ClassVar[bool]  # the Keras backend's own default compile mode, kept

    def __init__(self, device: str = "cpu", threads: int | None = None,
                 dtype: str = "float32", tf32: bool = False,
                 layout: str = "channels_last") -> None:
        super().__init__(device, threads, dtype, tf32, layout)
        if keras.backend.backend() != self.keras_backend:  # the package selects it; say so
            raise KerasBackendConflict(
                f"the {self.name!r} harness backend needs Keras on {self.keras_backend!r}, but "
                f"keras runs on {keras.backend.backend()!r} in this process")
        self._model: keras.Model | None = None  # the last one built or compiled
        self._data_device: str | None = None
        self._classes = NUM_CLASSES  # the last model built's output size: one-hot labels' width
        self._first_steps: weakref.WeakKeyDictionary[keras.Model, FirstSteps] = (
            weakref.WeakKeyDictionary())

    # ------------------------------------------------------------------ framework hooks

    @abstractmethod
    def _scope(self) -> contextlib.AbstractContextManager[Any]:
        """Place everything made or run inside on the backend's device."""

    @abstractmethod
    def _on_device(self, array: np.ndarray) -> Any:
        """A copy of `array` as the framework's tensor on the device (inside `_scope`)."""

    @abstractmethod
    def _gather_split(self, x: Any, index: np.ndarray, sizes: list[int]) -> list[Any]:
        """`x[index]` split into consecutive batches of `sizes`, on the device."""

    @abstractmethod
    def _steps(self, model: keras.Model, batches: list[tuple[Any, Any]],
               first: FirstSteps) -> Callable[[int, int], None]:
        """A callable `run(start, stop)` taking the optimizer steps of batches[start:stop]
        (called with consecutive ranges, in order) and waiting until the device finished them
        (one timed window); whatever the step needs before or after is done outside it."""

    def _build_for_training(self, model: keras.Model, batch: tuple[Any, Any]) -> None:
        """Build what the step needs (optimizer and metric variables) from a batch's shapes,
        as `fit` does before its first step on JAX and PyTorch."""
        model._symbolic_build(data_batch=batch)

    def _end_epoch(self, model: keras.Model) -> None:
        """What `fit` does after an epoch's steps, outside the timed region (also after a
        failed step)."""

    def _framework_rng(self) -> dict[str, np.ndarray]:
        """The framework's global RNG states where Keras draws from them: a training
        checkpoint keeps them. None here: on TensorFlow and JAX dropout draws from the
        layers' seed generators, which are model variables."""
        return {}

    def _restore_framework_rng(self, states: dict[str, np.ndarray]) -> None:
        """Put back what `_framework_rng` returned."""

    @abstractmethod
    def _synchronize(self) -> None:
        """Wait for queued device work (gathers made before the clock starts)."""

    @abstractmethod
    def _tensor_device(self, tensor: Any) -> str:
        """Where a tensor lies, as the framework names it."""

    @abstractmethod
    def _framework_environment(self) -> dict[str, Any]:
        """Versions, devices, threads and TF32, read back from the framework."""

    # ------------------------------------------------------------------ Keras' own

    def seed(self, seed: int) -> None:
        # Seeds Python, NumPy and the backend; Keras layers draw their dropout seed at
        # construction, so call this before `build`.
        keras.utils.set_random_seed(seed)

    def build(self, spec: ModelSpec, steps_per_epoch: int | None = None) -> keras.Model:
        with self._scope():
            model = build_model(spec, jit_compile=self.jit_compile, dtype=self.dtype,
                                steps_per_epoch=steps_per_epoch)
        # The spec's initial weights, as every backend starts (a caller's set_weights only
        # overrides them); the builder leaves the variables at zero.
        self.set_weights(model, initial_weights(spec))
        self._model = model
        self._classes = num_classes(spec)
        return model

    def set_weights(self, model: keras.Model, weights: Weights) -> None:
        expected = set(_variables(model))
        missing, extra = expected - set(weights), set(weights) - expected
        if missing or extra:
            raise KeyError(f"weights do not match the model: missing {sorted(missing)}, "
                           f"unexpected {sorted(extra)}")
        with self._scope():
            for key, variable in _variables(model).items():
                value = np.asarray(weights[key], dtype=variable.dtype)
                if tuple(value.shape) != tuple(variable.shape):
                    raise ValueError(f"{key}: shape {value.shape} != model's "
                                     f"{tuple(variable.shape)}")
                variable.assign(value)

    def get_weights(self, model: keras.Model) -> Weights:
        return {key: np.array(keras.ops.convert_to_numpy(variable.value))
                for key, variable in _variables(model).items()}

    def count_params(self, model: keras.Model) -> tuple[int, int]:
        def size(variables: list[Any]) -> int:
            return sum(int(np.prod(v.shape)) for v in variables)

        return size(model.trainable_weights), size(model.non_trainable_weights)

    def to_native(self, x: np.ndarray, y: np.ndarray) -> KerasData:
        labels = np.asarray(y, dtype=np.int64)
        onehot = np.eye(self._classes, dtype=np.float32)[labels]
        with self._scope():
            inputs = self._on_device(np.ascontiguousarray(x, dtype=self.dtype))
            targets = self._on_device(onehot.astype(self.dtype))
        self._data_device = self._tensor_device(inputs)
        return KerasData(inputs, targets, labels)

    def _epoch_batches(self, data: KerasData, order: np.ndarray,
                       batch_size: int) -> list[tuple[Any, Any]]:
        """The epoch's (inputs, targets) batches in `order`, gathered on the device."""
        sizes = batch_sizes(len(order), batch_size)
        if not sizes:
            return []
        index = np.asarray(order, dtype=np.int64)
        with self._scope():
            inputs = self._gather_split(data.x, index, sizes)
            targets = self._gather_split(data.y_onehot, index, sizes)
        return list(zip(inputs, targets, strict=True))

    def train_epoch(self, model: keras.Model, data: KerasData, order: np.ndarray,
                    batch_size: int) -> EpochResult:
        batches = self._epoch_batches(data, order, batch_size)
        # What `fit` does per epoch around its steps: the model, optimizer and metrics built,
        # the compiled step function (made once per model) and metrics reset, so loss and
        # accuracy cover this epoch only.
        if batches:
            self._build_for_training(model, batches[0])
        model.make_train_function()
        model.reset_metrics()
        first = self._first_steps.setdefault(model, FirstSteps())
        windows = plan_windows([batch_shape(batch) for batch in batches], first.shapes)
        run = self._steps(model, batches, first)
        self._synchronize()  # the gather is not part of the epoch's time
        try:
            with self._scope():
                timing = time_windows(windows, run)
        finally:
            self._end_epoch(model)
        # loss: mean over the epoch weighted by batch size, as fit's history reports it
        metrics = model.get_metrics_result()
        return EpochResult.of_windows(float(metrics["loss"]), float(metrics["accuracy"]),
                                      windows, timing)

    def evaluate(self, model: keras.Model, data: KerasData, batch_size: int) -> Evaluation:
        """Keras' own `evaluate` (the loss `fit` validates with; on TensorFlow computed from
        the softmax's logits), which gives no probabilities."""
        with self._scope():
            result = model.evaluate(data.x, data.y_onehot, batch_size=batch_size, verbose=0,
                                    return_dict=True)
        return Evaluation(float(result["loss"]), float(result["accuracy"]))

    def predict(self, model: keras.Model, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        with self._scope():
            probs = model.predict(np.asarray(x, dtype=self.dtype), batch_size=batch_size,
                                  verbose=0)
        return np.asarray(probs, dtype=np.float32)

    def compiled(self, model: keras.Model) -> keras.Model:
        """A twin of `model` compiled with jit_compile=True: `fit`'s train step, `predict` and
        the native predictor run through the backend's compiler (XLA; torch.compile)."""
        if self.jit_compile:
            raise BackendUnavailable(
                f"backend {self.name!r} already compiles every step by default "
                f"({compile_mode(model)}); it has no further compiled mode")
        self._check_compiler()
        with self._scope():
            twin = keras.models.clone_model(model)
            twin.set_weights(model.get_weights())
            optimizer = model.optimizer.from_config(model.optimizer.get_config())
            twin.compile(optimizer=optimizer, loss=model.loss, metrics=["accuracy"],
                         jit_compile=True)
        self._model = twin
        return twin

    def _check_compiler(self) -> None:
        """BackendUnavailable where the compiler behind jit_compile=True cannot run here."""

    def save(self, model: keras.Model, directory: Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "model.keras"
        model.save(path)
        return path

    def save_training_state(self, model: keras.Model, path: Path) -> None:
        checkpoint.save_training_state(model, path, self._framework_rng())

    def load_training_state(self, model: keras.Model, path: Path) -> None:
        with self._scope():
            rng = checkpoint.load_training_state(model, path)
        self._restore_framework_rng(rng)

    def compile_mode(self, model: keras.Model | None = None) -> str | None:
        """How `fit` runs `model`'s steps (default: the last model built), None before any
        build; see `harness.backends.keras_common.builder.compile_mode`."""
        model = model if model is not None else self._model
        return compile_mode(model) if model is not None else None

    def environment(self) -> dict[str, Any]:
        first = self._first_steps.get(self._model) if self._model is not None else None
        return {
            "framework": "keras",
            "keras": keras.__version__,
            "keras_backend": keras.backend.backend(),  # the one that ran, read from keras
            "device": self.device,
            "compile_mode": self.compile_mode(),
            # FirstSteps: the first train-step call per batch shape (None: not trained yet)
            "compile_seconds": first.seconds if first and first.shapes else None,
            "layout": _conv_layout(self._model),
            "data_device": self._data_device,
            **self._framework_environment(),
        }


def batch_shape(batch: tuple[Any, Any]) -> tuple[int, ...]:
    return tuple(int(d) for d in batch[0].shape)


def each_step(batches: Sequence[tuple[Any, Any]], first: FirstSteps,
              step: Callable[..., Any], *args: Any) -> None:
    """`step(*args)` once per batch, the first call of each batch shape timed by `first`."""
    for batch in batches:
        first.call(batch_shape(batch), step, *args)


def _variables(model: keras.Model) -> dict[str, Any]:
    """Canonical key -> Keras variable. Keras' own layouts already are the canonical ones."""
    return {f"{spec_index(layer)}.{name}": variable
            for layer in model.layers for name, variable in keras_variables(layer).items()}


def _conv_layout(model: keras.Model | None) -> str | None:
    """The data format the model's convolutions declare (Keras' tensors are NHWC; a backend
    may still transpose inside, as Keras on PyTorch does around each convolution); None
    without a convolution."""
    formats = {layer.data_format for layer in (model.layers if model is not None else [])
               if isinstance(layer, keras.layers.Conv2D)}
    return ", ".join(sorted(formats)) or None
