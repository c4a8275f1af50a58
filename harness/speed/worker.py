"""A process that holds one configuration (a backend with a spec built from its initial
weights, its data on the device, and its ONNX export) and runs timing windows on request.

Comparisons interleave windows of two such processes (harness.measure.protocol), so Keras and
PyTorch, or two copies of one framework for the noise floor, never share a process: a process
holds one Keras backend, and neither framework's thread pools or allocator see the other's.
Only the window itself is timed, inside the worker; the request and the reply are not.

    start(setup)             build the configuration (once, first)
    train(steps)             (seconds, machine_load): `steps` optimizer steps, in data order
    calls(runtime, batch, n) (seconds, machine_load): n calls of the native predictor
                             (runtime "predict") or of an ONNX Runtime session ("onnxruntime")
    describe()               the backend's environment and the steps of one epoch
An exception in the worker is raised in the parent as one WorkerError line.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ORT_GRAPH_OPTIMIZATION = "all"


@dataclass(frozen=True)
class WorkerSetup:
    backend: str
    spec_text: str  # the spec's YAML, parsed in the worker
    threads: int | None
    data_dir: str | None
    seed: int
    limit: int | None = None  # the first N training images, as the run trained on
    device: str = "cpu"


class WorkerError(RuntimeError):
    """What a worker replied instead of a result (one line), or that it died."""


class _Configuration:
    """The worker's side: everything is built once, before any window."""

    def __init__(self, setup: WorkerSetup) -> None:
        from harness import data as data_module
        from harness.backends import get_backend
        from harness.spec import initial_weights
        from harness.spec.loader import parse_spec
        from harness.spec.shapes import num_classes

        self.spec = parse_spec(setup.spec_text, source="<speed worker>")
        self.setup = setup
        self.backend = get_backend(setup.backend, device=setup.device, threads=setup.threads)
        self.backend.seed(setup.seed)
        self.arrays = data_module.load_arrays(self.spec.input, data_dir=setup.data_dir,
                                              limit=setup.limit,
                                              classes=num_classes(self.spec))
        if self.spec.train.validation_split is not None:  # trains on what training trains on
            self.arrays = data_module.hold_out(self.arrays, self.spec.train.validation_split)
        self.batch_size = self.spec.train.batch_size
        self.model = self.backend.build(self.spec, data_module.num_batches(
            len(self.arrays.y_train), self.batch_size))
        self.backend.set_weights(self.model, initial_weights(self.spec, setup.seed))
        self.train_data = self.backend.to_native(self.arrays.x_train, self.arrays.y_train)
        self._epoch, self._position = 0, 0
        self._order = self._epoch_order()
        self._predictors: dict[tuple[str, int], Callable[[], Any]] = {}
        self._onnx: Path | None = None
        self._tmp = tempfile.TemporaryDirectory(prefix="harness-speed-")

    def _epoch_order(self) -> np.ndarray:
        from harness import data as data_module

        return data_module.epoch_order(len(self.arrays.y_train), self._epoch, self.setup.seed,
                                       self.spec.train.shuffle)

    def _next_indices(self, steps: int) -> np.ndarray:
        """The next `steps` full batches of the training order, going on into the next
        epoch's order where one ends (its last partial batch skipped), so every window trains
        full batches of fresh data in the order training uses."""
        parts, needed = [], steps * self.batch_size
        while needed > 0:
            usable = len(self._order) - len(self._order) % self.batch_size
            if self._position >= usable:
                self._epoch, self._position = self._epoch + 1, 0
                self._order = self._epoch_order()
                continue
            take = min(needed, usable - self._position)
            parts.append(self._order[self._position:self._position + take])
            self._position += take
            needed -= take
        return np.concatenate(parts)

    def train(self, steps: int) -> tuple[float, Any]:
        from harness.measure.machine_load import load_mark, load_since

        indices = self._next_indices(steps)
        mark = load_mark()
        result = self.backend.train_epoch(self.model, self.train_data, indices, self.batch_size)
        return result.seconds, load_since(mark)

    def _predictor(self, runtime: str, batch: int) -> Callable[[], Any]:
        key = (runtime, batch)
        if key not in self._predictors:
            x = np.ascontiguousarray(self.arrays.x_test[:batch])
            self._predictors[key] = (self.backend.native_predictor(self.model, x)
                                     if runtime == "predict" else self._session_runner(x))
        return self._predictors[key]

    def _session_runner(self, x: np.ndarray) -> Callable[[], Any]:
        from harness.backends.onnx_io import DEFAULT_OPSET
        from harness.export.driver import convert_to_onnx
        from harness.ort.sessions import create_session
        from harness.ort.timing import session_runner

        if self._onnx is None:
            path = Path(self._tmp.name) / "model.onnx"
            convert_to_onnx(self.backend, self.model, self.spec, path, DEFAULT_OPSET)
            self._onnx = path
        # the provider of the frameworks' device: CUDA against CUDA, CPU against CPU
        session = create_session(self._onnx, self.setup.device, self.setup.threads,
                                 ORT_GRAPH_OPTIMIZATION)
        return session_runner(session, x)

    def calls(self, runtime: str, batch: int, calls: int) -> tuple[float, Any]:
        from harness.measure.machine_load import load_mark, load_since

        fn = self._predictor(runtime, batch)
        mark = load_mark()
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        seconds = time.perf_counter() - start
        return seconds, load_since(mark)

    def describe(self) -> dict[str, Any]:
        from harness import data as data_module

        return {"environment": self.backend.environment(),
                "steps_per_epoch": data_module.num_batches(len(self.arrays.y_train),
                                                           self.batch_size)}


_CONFIGURATION: _Configuration | None = None  # in a worker process: the one it holds


def start(setup: WorkerSetup) -> None:
    global _CONFIGURATION
    _CONFIGURATION = _Configuration(setup)


def _held() -> _Configuration:
    if _CONFIGURATION is None:
        raise RuntimeError("no configuration: start() was not called in this worker")
    return _CONFIGURATION


def train(steps: int) -> tuple[float, Any]:
    return _held().train(steps)


def calls(runtime: str, batch: int, count: int) -> tuple[float, Any]:
    return _held().calls(runtime, batch, count)


def describe() -> dict[str, Any]:
    return _held().describe()


class Worker:
    """The parent's handle on a worker process (harness.backends.isolation: a fresh
    interpreter; nothing of this process's frameworks is inherited). It starts building its
    configuration at once; the first request waits for that."""

    def __init__(self, label: str, setup: WorkerSetup) -> None:
        from harness.backends.isolation import BackendProcess

        self.label = label
        self._process = BackendProcess()
        self._process.send(__name__, "start", setup)
        self._ready = False

    def _answer(self, what: str) -> Any:
        try:
            return self._process.receive(what)
        except Exception as exc:  # noqa: BLE001 - one line for the caller's record
            raise WorkerError(f"{self.label}: {type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''}") from exc

    def wait_ready(self) -> None:
        if not self._ready:
            self._answer("start")
            self._ready = True

    def request(self, command: str, *args: Any) -> Any:
        self.wait_ready()
        self._process.send(__name__, command, *args)
        return self._answer(command)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._process.close()
