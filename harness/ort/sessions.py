"""ONNX Runtime sessions on a named provider, with the provider that runs checked, not assumed.

onnxruntime-gpu lists CUDAExecutionProvider even where CUDA cannot load, and then silently runs
on the CPU: a session is only returned when `get_providers()` starts with the requested one.
"""

from __future__ import annotations

import contextlib
import io
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from harness.ort.providers import ProviderUnavailable, get_provider

GRAPH_OPTIMIZATION_LEVELS = ("disable", "basic", "extended", "all")


@cache
def _preload_cuda_libraries() -> str:
    """Load CUDA/cuDNN from the NVIDIA pip wheels when present (onnxruntime >= 1.21); return
    what failed to load, for the reason of an unavailable provider."""
    import onnxruntime as ort

    preload = getattr(ort, "preload_dlls", None)
    printed = io.StringIO()
    if preload is not None:
        with contextlib.suppress(Exception), contextlib.redirect_stdout(printed):
            preload()
    failures = [line.split(":")[0] for line in printed.getvalue().splitlines()
                if line.startswith("Failed to load")]
    return "; ".join(failures)


def session_options(threads: int | None = None, graph_optimization: str = "all") -> Any:
    import onnxruntime as ort

    if graph_optimization not in GRAPH_OPTIMIZATION_LEVELS:
        raise ValueError(f"graph_optimization must be one of {list(GRAPH_OPTIMIZATION_LEVELS)}, "
                         f"got {graph_optimization!r}")
    options = ort.SessionOptions()
    options.graph_optimization_level = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[graph_optimization]
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only; provider problems are reported by us
    return options


def create_session(path: str | Path, provider: str = "cpu", threads: int | None = None,
                   graph_optimization: str = "all") -> Any:
    """An InferenceSession that really runs on `provider`, else ProviderUnavailable."""
    import onnxruntime as ort

    wanted = get_provider(provider)
    # A provider that cannot start is raised by us with its reason: ORT's own error log of it
    # (severity 3) would only repeat that, so only fatal messages are shown.
    ort.set_default_logger_severity(4 if wanted.name != "cpu" else 3)
    if wanted.ort_name not in ort.get_available_providers():
        raise ProviderUnavailable(f"{wanted.ort_name} is not in this onnxruntime build "
                                  f"({ort.__version__}, {ort.get_device()}); "
                                  f"available: {ort.get_available_providers()}")
    missing = _preload_cuda_libraries() if wanted.name != "cpu" else ""
    options = session_options(threads, graph_optimization)
    try:
        session = ort.InferenceSession(str(path), sess_options=options,
                                       providers=[wanted.ort_name])
    except Exception as exc:  # noqa: BLE001 - ORT raises bare RuntimeErrors/Fails
        if wanted.name == "cpu":
            raise
        raise ProviderUnavailable(f"{wanted.ort_name} failed to start: {exc}") from None
    if session.get_providers()[0] != wanted.ort_name:
        raise ProviderUnavailable(
            f"{wanted.ort_name} was requested but the session runs on "
            f"{session.get_providers()} (the CUDA libraries could not be loaded"
            f"{': ' + missing if missing else ''})")
    return session


def session_info(session: Any) -> dict[str, Any]:
    options = session.get_session_options()
    return {
        "providers": session.get_providers(),
        "intra_op_threads": options.intra_op_num_threads,
        "graph_optimization_level": str(options.graph_optimization_level).rsplit(".", 1)[-1],
    }


def run_batched(session: Any, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Outputs of the model's single output over `x`, in batches."""
    input_name = session.get_inputs()[0].name
    outputs = [session.run(None, {input_name: x[i:i + batch_size]})[0]
               for i in range(0, len(x), batch_size)]
    return np.concatenate(outputs).astype(np.float32, copy=False)
