"""ONNX Runtime latency on a verified provider, timed by the same loop as the frameworks.

Two ways to run a session:
- `session_run`: `session.run` with a feed dict prepared once. On CUDA each call includes the
  host->device copy of the input and the device->host copy of the output: what a numpy caller
  pays.
- `io_binding`: input and output stay on the provider's device (IO binding), so only the
  model's own work is timed, like a framework predictor whose input already is on the GPU.

CPU records have `session_run` only; CUDA records both. A provider that cannot run gives a
record with status "unavailable" and the reason, never timings taken on another provider.
Every record says how many nodes each provider ran (`placement`, from a separate profiled run
before timing); a device record whose compute nodes partly ran on the CPU is `mixed`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from harness.measure.machine_load import load_mark, load_since
from harness.measure.timing import LatencyStats, measure, validate_measure_args
from harness.ort.providers import ProviderUnavailable, get_provider
from harness.ort.sessions import create_session, profile_placement, session_info

SESSION_RUN = "session_run"
IO_BINDING = "io_binding"


class IoBindingRunner:
    """One inference per call with input and outputs bound on `device_type`; blocks until the
    outputs are ready, so timings of the call are real even though CUDA kernels run async."""

    def __init__(self, session: Any, x: np.ndarray, device_type: str, device_id: int = 0) -> None:
        import onnxruntime as ort

        self._session = session
        # Kept on self: the device copy of the input must outlive every run.
        self._input = ort.OrtValue.ortvalue_from_numpy(_as_input(x), device_type, device_id)
        self._binding = session.io_binding()
        self._binding.bind_ortvalue_input(session.get_inputs()[0].name, self._input)
        for output in session.get_outputs():
            # ORT allocates outputs on the device from its arena, as torch's allocator does.
            self._binding.bind_output(output.name, device_type, device_id)
        self._binding.synchronize_inputs()

    def __call__(self) -> None:
        self._session.run_with_iobinding(self._binding)
        # Run already syncs the provider by default; explicit so timings do not depend on it.
        self._binding.synchronize_outputs()

    def outputs(self) -> list[np.ndarray]:
        """The last run's outputs, copied to the host (for checking, outside timed regions)."""
        return [np.asarray(value) for value in self._binding.copy_outputs_to_cpu()]


def _as_input(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float32)


def session_runner(session: Any, x: np.ndarray) -> Any:
    """A zero-argument plain `session.run` on a feed dict built here, outside any timing."""
    feed = {session.get_inputs()[0].name: _as_input(x)}

    def run() -> list[Any]:
        return session.run(None, feed)

    return run


def ort_latency(session: Any, x: np.ndarray, *, provider: str, io_binding: bool,
                warmup: int = 10, min_runs: int = 50, min_seconds: float = 1.0,
                max_seconds: float | None = None) -> LatencyStats:
    """Latency of one inference of the batch `x` on an open session of `provider`."""
    device_type = get_provider(provider).device_type
    fn = IoBindingRunner(session, x, device_type) if io_binding else session_runner(session, x)
    return measure(fn, batch_size=len(x), warmup=warmup, min_runs=min_runs,
                   min_seconds=min_seconds, max_seconds=max_seconds)


def modes(provider: str) -> tuple[str, ...]:
    """Which figures a provider gets: device providers also time device-resident IO."""
    if get_provider(provider).device_type == "cpu":
        return (SESSION_RUN,)
    return (IO_BINDING, SESSION_RUN)


def input_batch(x: np.ndarray, batch_size: int) -> np.ndarray:
    """The first `batch_size` samples of `x` as one contiguous float32 batch."""
    if len(x) < batch_size:
        raise ValueError(f"x holds {len(x)} samples, fewer than batch_size={batch_size}")
    return _as_input(x[:batch_size])


def measure_session(path: str | Path, provider: str, *, batch_size: int, x: np.ndarray,
                    threads: int | None = None, graph_optimization: str = "all",
                    warmup: int = 10, min_runs: int = 50, min_seconds: float = 1.0,
                    max_seconds: float | None = None,
                    strict_providers: bool = False) -> dict[str, Any]:
    """Open `path` on `provider` and time batches of `batch_size` samples taken from `x`.

    Returns a JSON-ready record; `latency` maps each mode (see `modes`) to
    `LatencyStats.as_dict()`, and is empty when status is "unavailable". `placement` (see
    `Placement.as_dict`) and `mixed` come from a profiled run before any timing; with
    `strict_providers` a device session with any node on the CPU is "unavailable" instead.
    """
    import onnxruntime as ort

    validate_measure_args(batch_size=batch_size, warmup=warmup, min_runs=min_runs,
                          min_seconds=min_seconds, max_seconds=max_seconds)
    wanted = modes(provider)  # ValueError for an unknown provider, before any work
    batch = input_batch(x, batch_size)
    record: dict[str, Any] = {
        "runtime": "onnxruntime", "onnxruntime": ort.__version__, "model": str(path),
        "requested_provider": provider, "status": "ok", "reason": None, "provider": None,
        "providers": [], "threads": threads, "intra_op_threads": None, "inter_op_threads": None,
        "graph_optimization": graph_optimization, "graph_optimization_level": None,
        "batch_size": batch_size, "input_shape": list(batch.shape), "placement": None,
        "mixed": False, "strict_providers": strict_providers, "latency": {},
    }
    try:
        placement = profile_placement(path, provider, batch, threads=threads,
                                      graph_optimization=graph_optimization,
                                      strict_providers=strict_providers)
        session = create_session(path, provider, threads, graph_optimization,
                                 strict_providers=strict_providers)
    except ProviderUnavailable as exc:
        record.update(status="unavailable", reason=str(exc))
        return record
    info = session_info(session)
    record.update(
        placement=placement.as_dict(), mixed=placement.mixed,
        provider=info["providers"][0],  # verified by create_session to be the requested one
        providers=info["providers"],
        intra_op_threads=info["intra_op_threads"], inter_op_threads=info["inter_op_threads"],
        graph_optimization_level=info["graph_optimization_level"],
    )
    for mode in wanted:
        stats = ort_latency(session, batch, provider=provider, io_binding=mode == IO_BINDING,
                            warmup=warmup, min_runs=min_runs, min_seconds=min_seconds,
                            max_seconds=max_seconds)
        record["latency"][mode] = stats.as_dict()
    return record


def bare_session_loop(session: Any, feed: dict[str, np.ndarray], runs: int) -> np.ndarray:
    """Per-call nanoseconds of the loop anyone would write to time calls: `session.run`
    `runs` times, a clock read on either side of each call and nothing else. The reference the
    harness's per-call timings are checked against (warm the session up first)."""
    if runs < 1:
        raise ValueError(f"runs must be >= 1, got {runs}")
    clock = time.perf_counter_ns
    samples = np.empty(runs, dtype=np.int64)
    for i in range(runs):
        start = clock()
        session.run(None, feed)
        samples[i] = clock() - start
    return samples


def _ratio(harness_ms: float, bare_ms: float) -> float:
    return harness_ms / bare_ms if bare_ms > 0 else float("inf")


def harness_vs_bare(session: Any, x: np.ndarray, *, runs: int = 200, warmup: int = 10,
                    harness_first: bool = True) -> dict[str, Any]:
    """The harness's loop next to a bare loop on the same session and batch, like with like:
    `p50_ratio` = harness p50 / bare p50 and `mean_ratio` = harness mean / bare mean, both
    close to 1 when the harness adds nothing (it adds loop bookkeeping per call). Both loops
    run after `warmup` untimed calls; `harness_first` says which one runs first, so that a
    caller repeating rounds can alternate it and neither loop always gets the warmer caches.
    `machine_load` covers both loops (see harness.measure.machine_load)."""
    run = session_runner(session, x)
    feed = {session.get_inputs()[0].name: _as_input(x)}
    for _ in range(warmup):
        run()
    mark = load_mark()
    bare_ns = None if harness_first else bare_session_loop(session, feed, runs)
    stats = measure(run, batch_size=len(x), warmup=0, min_runs=runs, min_seconds=0.0)
    if bare_ns is None:
        bare_ns = bare_session_loop(session, feed, runs)
    bare = LatencyStats.from_samples(bare_ns, len(x))
    return {
        "runs": runs,
        "harness_first": harness_first,
        "harness_p50_ms": stats.p50_ms,
        "harness_mean_ms": stats.mean_ms,
        "bare_p50_ms": bare.p50_ms,
        "bare_mean_ms": bare.mean_ms,
        "p50_ratio": _ratio(stats.p50_ms, bare.p50_ms),
        "mean_ratio": _ratio(stats.mean_ms, bare.mean_ms),
        "machine_load": load_since(mark),
    }
