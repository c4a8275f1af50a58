"""ONNX Runtime sessions on a named provider, with the provider that runs checked, not assumed.

Two ways a CUDA session can quietly run on the CPU, and what catches each:
- session level: onnxruntime-gpu lists CUDAExecutionProvider even where CUDA cannot load, and
  then runs the whole session on the CPU: a session is only returned when `get_providers()`
  starts with the requested provider.
- node level: a session that starts with CUDA can still leave single nodes to the CPU provider
  (no CUDA kernel for the op or type, or ORT's choice for shape computations). `profile_placement`
  reads from ORT's profile which provider ran each node, in a separate short session, outside
  any timing. `strict_providers` makes ORT itself refuse such a session
  (`session.disable_cpu_ep_fallback`).
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from harness.measure.environment import thread_budget
from harness.ort.providers import PROVIDERS, ProviderUnavailable, get_provider

GRAPH_OPTIMIZATION_LEVELS = ("disable", "basic", "extended", "all")
CPU_EP = PROVIDERS["cpu"].ort_name
# ORT's session config key: session creation fails when any node would go to the CPU provider.
DISABLE_CPU_EP_FALLBACK = "session.disable_cpu_ep_fallback"
# Host<->device copies ORT inserts around a device provider's nodes: data movement, not compute.
COPY_OPS = frozenset({"MemcpyFromHost", "MemcpyToHost"})
FLOAT_TYPES = frozenset({"float", "float16", "bfloat16", "double"})


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


def session_options(threads: int | None = None, graph_optimization: str = "all", *,
                    strict_providers: bool = False, profile_prefix: str | None = None) -> Any:
    """SessionOptions; `strict_providers` forbids ORT to put any node on the CPU provider (for
    device providers only: ORT rejects it next to an explicit CPU provider), `profile_prefix`
    turns profiling on, its JSON written at that path prefix."""
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
    # The harness's one budget, as every runtime gets it: N intra-op, 1 inter-op.
    options.intra_op_num_threads = thread_budget(threads)
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only; provider problems are reported by us
    if strict_providers:
        options.add_session_config_entry(DISABLE_CPU_EP_FALLBACK, "1")
    if profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    return options


def create_session(path: str | Path, provider: str = "cpu", threads: int | None = None,
                   graph_optimization: str = "all", *, strict_providers: bool = False,
                   profile_prefix: str | None = None) -> Any:
    """An InferenceSession that really runs on `provider`, else ProviderUnavailable. With
    `strict_providers`, a device provider's session in which ORT would run any node on the CPU
    is refused (ProviderUnavailable) by ORT at creation."""
    import onnxruntime as ort

    wanted = get_provider(provider)
    strict = strict_providers and wanted.device_type != "cpu"
    # A provider that cannot start is raised by us with its reason: ORT's own error log of it
    # (severity 3) would only repeat that, so only fatal messages are shown.
    ort.set_default_logger_severity(4 if wanted.name != "cpu" else 3)
    if wanted.ort_name not in ort.get_available_providers():
        raise ProviderUnavailable(f"{wanted.ort_name} is not in this onnxruntime build "
                                  f"({ort.__version__}, {ort.get_device()}); "
                                  f"available: {ort.get_available_providers()}")
    missing = _preload_cuda_libraries() if wanted.name != "cpu" else ""
    options = session_options(threads, graph_optimization, strict_providers=strict,
                              profile_prefix=profile_prefix)
    try:
        session = ort.InferenceSession(str(path), sess_options=options,
                                       providers=[wanted.ort_name])
    except Exception as exc:  # noqa: BLE001 - ORT raises bare RuntimeErrors/Fails
        if wanted.name == "cpu":
            raise
        how = f" with {DISABLE_CPU_EP_FALLBACK}=1 (--strict-providers)" if strict else ""
        raise ProviderUnavailable(f"{wanted.ort_name} failed to start{how}: {exc}") from None
    if session.get_providers()[0] != wanted.ort_name:
        raise ProviderUnavailable(
            f"{wanted.ort_name} was requested but the session runs on "
            f"{session.get_providers()} (the CUDA libraries could not be loaded"
            f"{': ' + missing if missing else ''})")
    return session


@dataclass(frozen=True)
class Placement:
    """Which execution provider ran the nodes of one profiled inference.

    `fallback_compute_nodes` ("name (OpType)") are the compute nodes a device provider left to
    the CPU provider: nodes with a floating-point input or output that are not host<->device
    copies, or whose types the profile does not give. Nodes on integer tensors only are shape
    computations (Shape, Gather, Concat, ... on int64), which ORT places on the CPU on purpose;
    they are counted in `nodes` but do not make a record mixed. Empty on the CPU provider.
    """

    nodes: dict[str, int]  # provider -> nodes it ran
    fallback_compute_nodes: tuple[str, ...] = ()

    @property
    def mixed(self) -> bool:
        return bool(self.fallback_compute_nodes)

    def as_dict(self) -> dict[str, Any]:
        return {"nodes": dict(self.nodes),
                "fallback_compute_nodes": list(self.fallback_compute_nodes)}


def _is_compute(args: dict[str, Any]) -> bool:
    """A profiled node's work is compute unless it is a copy or touches no float tensor."""
    if args.get("op_name") in COPY_OPS:
        return False
    entries = [*(args.get("input_type_shape") or []), *(args.get("output_type_shape") or [])]
    types = {name for entry in entries if isinstance(entry, dict) for name in entry}
    return not types or bool(types & FLOAT_TYPES)


def placement_from_profile(events: list[dict[str, Any]], provider: str) -> Placement:
    """The node placement in ORT profile events (Chrome trace JSON): each node's
    "<name>_kernel_time" event carries the provider that ran it in `args`."""
    device = get_provider(provider).device_type != "cpu"
    ran_on: dict[str, str] = {}
    fallback: dict[str, str] = {}
    for event in events:
        name = str(event.get("name", ""))
        if event.get("cat") != "Node" or not name.endswith("_kernel_time"):
            continue
        args = event.get("args") or {}
        node = name.removesuffix("_kernel_time")
        key = str(args.get("node_index", node))  # one count per node, however many runs
        ran_on[key] = str(args.get("provider") or "unknown")
        if device and ran_on[key] == CPU_EP and _is_compute(args):
            fallback[key] = f"{node} ({args.get('op_name', '?')})"
    if not ran_on:
        raise ValueError("the ONNX Runtime profile holds no node events")
    return Placement(dict(sorted(Counter(ran_on.values()).items())),
                     tuple(sorted(fallback.values())))


def profile_placement(path: str | Path, provider: str, x: np.ndarray, *,
                      threads: int | None = None, graph_optimization: str = "all",
                      strict_providers: bool = False) -> Placement:
    """Run `x` once in a separate profiled session, with the options a timed session gets (so
    ORT partitions the graph alike), and read where each node ran. The profiled session is
    closed before returning: profiling never touches a timed run.

    ProviderUnavailable as `create_session`; also when `strict_providers` and any node ran on
    the CPU under a device provider (ORT enforces this already; checked, not assumed)."""
    with tempfile.TemporaryDirectory(prefix="harness-ort-profile-") as folder:
        session = create_session(path, provider, threads, graph_optimization,
                                 strict_providers=strict_providers,
                                 profile_prefix=str(Path(folder) / "placement"))
        session.run(None, {session.get_inputs()[0].name: x})
        events = json.loads(Path(session.end_profiling()).read_text(encoding="utf-8"))
        del session  # free the device memory before the timed session is made
    placement = placement_from_profile(events, provider)
    on_cpu = placement.nodes.get(CPU_EP, 0)
    if strict_providers and get_provider(provider).device_type != "cpu" and on_cpu:
        compute = ", ".join(placement.fallback_compute_nodes) or "shape/copy nodes only"
        raise ProviderUnavailable(
            f"--strict-providers: {on_cpu} of {sum(placement.nodes.values())} nodes ran on "
            f"{CPU_EP} under {get_provider(provider).ort_name} ({compute})")
    return placement


def session_info(session: Any) -> dict[str, Any]:
    options = session.get_session_options()
    return {
        "providers": session.get_providers(),
        "intra_op_threads": options.intra_op_num_threads,
        "inter_op_threads": options.inter_op_num_threads,
        "graph_optimization_level": str(options.graph_optimization_level).rsplit(".", 1)[-1],
    }


def run_batched(session: Any, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Outputs of the model's single output over `x`, in batches."""
    input_name = session.get_inputs()[0].name
    outputs = [session.run(None, {input_name: x[i:i + batch_size]})[0]
               for i in range(0, len(x), batch_size)]
    return np.concatenate(outputs).astype(np.float32, copy=False)
