"""Peak memory of a piece of work, as optimum-benchmark's memory tracker records it.

A sampler thread beside the work polls this process's resident set size (RSS, psutil) every
few milliseconds; the peak is the largest sample, and `increase_mb` is how far it rose above
the RSS when tracking started (what the work itself added, libraries already loaded aside).
Where a GPU is in use, torch's peak allocated CUDA memory and NVML's per-process GPU memory
are added, each when it can be read (else None, with the reason in `gpu_note`).

A sampler misses a peak shorter than its interval; an allocation that stays (a session, a
model, a compiled graph) is always seen, which is what these figures are for.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psutil

SAMPLE_INTERVAL_S = 0.005
_MB = 1024 * 1024


class MemoryTracker:
    """Samples RSS in a daemon thread between `start` and `stop`; `result` is the record."""

    def __init__(self, interval_s: float = SAMPLE_INTERVAL_S) -> None:
        if not interval_s > 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s!r}")
        self._interval = interval_s
        self._process = psutil.Process(os.getpid())
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._baseline = self._peak = 0
        self._samples = 0

    def _sample(self) -> None:
        rss = self._process.memory_info().rss
        self._peak = max(self._peak, rss)
        self._samples += 1

    def _poll(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("this MemoryTracker was started already")
        self._baseline = self._peak = self._process.memory_info().rss
        _reset_torch_cuda_peak()
        self._thread = threading.Thread(target=self._poll, name="harness-memory", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is None:
            raise RuntimeError("this MemoryTracker was never started")
        self._stop.set()
        self._thread.join()
        self._sample()  # the end state counts too, however short the work was

    def result(self) -> dict[str, Any]:
        gpu = _gpu_memory()
        return {"peak_rss_mb": self._peak / _MB, "baseline_rss_mb": self._baseline / _MB,
                "increase_mb": (self._peak - self._baseline) / _MB, "samples": self._samples,
                "interval_s": self._interval, **gpu}


@contextmanager
def track_memory(interval_s: float = SAMPLE_INTERVAL_S) -> Iterator[MemoryTracker]:
    """`with track_memory() as memory: work()`, then `memory.result()`; the sampler stops
    however the work ends."""
    tracker = MemoryTracker(interval_s)
    tracker.start()
    try:
        yield tracker
    finally:
        tracker.stop()


def peak_of(results: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    """The record with the highest peak RSS among `results` (None entries skipped)."""
    present = [result for result in results if result]
    return max(present, key=lambda result: result["peak_rss_mb"]) if present else None


def _torch_cuda() -> Any:
    """torch, when this process already imported it and it has a usable GPU; else None.
    Never imports torch: tracking must not load a framework the work did not."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available():
        return None
    return torch


def _reset_torch_cuda_peak() -> None:
    torch = _torch_cuda()
    if torch is not None:
        torch.cuda.reset_peak_memory_stats()


def _nvml_process_mb() -> tuple[float | None, str | None]:
    """This process's GPU memory from NVML, summed over devices; (None, why) when unknown."""
    try:
        import pynvml
    except ImportError:
        return None, "NVML: pynvml (nvidia-ml-py) is not installed"
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return None, f"NVML: {exc}"
    try:
        used = 0
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            for process in pynvml.nvmlDeviceGetComputeRunningProcesses(handle):
                if process.pid == os.getpid() and process.usedGpuMemory is not None:
                    used += process.usedGpuMemory
        return used / _MB, None
    except pynvml.NVMLError as exc:
        return None, f"NVML: {exc}"
    finally:
        pynvml.nvmlShutdown()


def _gpu_memory() -> dict[str, Any]:
    """torch's peak allocated CUDA memory since `start` (when torch uses a GPU here) and
    NVML's GPU memory of this process now (any framework's: ONNX Runtime's too)."""
    torch = _torch_cuda()
    nvml_mb, note = _nvml_process_mb()
    return {"torch_cuda_peak_mb": torch.cuda.max_memory_allocated() / _MB if torch else None,
            "nvml_process_mb": nvml_mb, "gpu_note": note}
