"""The frameworks' own predictors in `harness bench`: each backend built on each device from
the same weights, and its latency records (the first call, which traces and compiles, timed
apart)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.backends import Backend, BackendUnavailable, get_backend
from harness.export.driver import WeightsSource
from harness.latency.records import failure_reason, latency_record
from harness.measure.memory import track_memory
from harness.measure.timing import measure
from harness.training import build_with_weights


def result_device(output: Any) -> str:
    """Where the framework really put the result: torch 'cpu' / 'cuda:0', TF 'CPU:0' / 'GPU:0'
    (from '/job:localhost/replica:0/task:0/device:GPU:0')."""
    return str(getattr(output, "device", "unknown")).rsplit("device:", 1)[-1]


def on_gpu(device: str) -> bool:
    return "cuda" in device.lower() or "gpu" in device.lower()


def native_batch_records(backend: Backend, model: Any, name: str, provider: str, batch: int,
                  x: np.ndarray, threads: int | None, timing: dict[str, Any]) -> dict[str, Any]:
    try:
        with track_memory() as memory:
            started = time.perf_counter()  # the first call traces and compiles: timed apart
            predictor = backend.native_predictor(model, np.ascontiguousarray(x[:batch]))
            device = result_device(predictor())
            first_call = time.perf_counter() - started
            if on_gpu(device) != (provider == "cuda"):
                # e.g. TF soft placement after an earlier CPU backend hid the GPUs
                return latency_record("native", name, provider, "native", batch, threads,
                               provider_used=device, status="unavailable",
                               reason=f"{name} ran on {device}, not on {provider}")
            stats = measure(predictor, batch_size=batch, **timing)
    except BackendUnavailable as exc:  # e.g. the result was not on the requested device
        return latency_record("native", name, provider, "native", batch, threads,
                       status="unavailable", reason=str(exc))
    except Exception as exc:  # noqa: BLE001 - recorded, the other combinations still run
        return latency_record("native", name, provider, "native", batch, threads, status="failed",
                       reason=failure_reason(exc))
    return latency_record("native", name, provider, "native", batch, threads, provider_used=device,
                   stats=stats.as_dict(), first_call_seconds=first_call,
                   memory=memory.result())


@dataclass
class NativeModel:
    """A backend on one device with the model built, or why not: (status, reason)."""

    backend: Backend | None = None
    model: Any = None
    problem: tuple[str, str] | None = None


# (backend, model) on a device: built from weights (`built_from`), or a trained model's
# (harness.training.TrainedModel.on_device: the trained one on its own device)
ModelOn = Callable[[str], tuple[Backend, Any]]


def built_from(source: WeightsSource, name: str, threads: int | None, tf32: bool = False,
               layout: str = "channels_last") -> ModelOn:
    """Backend `name` on a device with the source's model built there."""
    def on(device: str) -> tuple[Backend, Any]:
        backend = get_backend(name, device=device, threads=threads, tf32=tf32, layout=layout)
        return backend, build_model(backend, source)

    return on


def _native_on(model_on: ModelOn, device: str) -> NativeModel:
    try:
        return NativeModel(*model_on(device))
    except BackendUnavailable as exc:  # no framework, no such device
        return NativeModel(problem=("unavailable", str(exc)))
    except Exception as exc:  # noqa: BLE001 - e.g. out of GPU memory: recorded, others run
        return NativeModel(problem=("failed", failure_reason(exc)))


def native_records(native: NativeModel, name: str, provider: str, batch_sizes: Sequence[int],
                    x: np.ndarray, threads: int | None, timing: dict[str, Any],
                    environments: dict[str, Any] | None) -> list[dict[str, Any]]:
    if native.problem is not None:
        status, reason = native.problem
        return [latency_record("native", name, provider, "native", batch, threads, status=status,
                        reason=reason) for batch in batch_sizes]
    if environments is not None:
        environments.setdefault(name, {})[provider] = native.backend.environment()
    return [native_batch_records(native.backend, native.model, name, provider, batch, x, threads,
                          timing) for batch in batch_sizes]


def build_model(backend: Backend, source: WeightsSource) -> Any:
    """The backend's model of the source's spec, holding the source's weights."""
    return build_with_weights(backend, source.spec, source.weights)


def natives_on_devices(model_on: ModelOn, providers: Sequence[str]) -> dict[str, NativeModel]:
    """The backend on every device, CPU always (it exports). Device backends first: Keras' CPU
    backend hides the GPUs from TensorFlow unless its runtime already started, and a CUDA
    predictor made after that would run on the CPU (caught, but then never measured)."""
    natives = {p: _native_on(model_on, p) for p in providers if p != "cpu"}
    natives["cpu"] = _native_on(model_on, "cpu")
    return natives
