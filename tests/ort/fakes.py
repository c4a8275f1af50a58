"""A fake onnxruntime CUDA provider on a machine without a GPU.

`install_fake_cuda` makes onnxruntime list CUDAExecutionProvider and hands out, for a session
asked for it, a `FakeCudaSession`: it computes with a real CPU session of the same file, but
reports the providers and the node placement (profile JSON) a test chooses, so every fallback
guard can be driven without CUDA. CPU sessions stay real.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

CUDA_EP = "CUDAExecutionProvider"
CPU_EP = "CPUExecutionProvider"
ORT_STRICT_ERROR = ("This session contains graph nodes that are assigned to the default CPU EP, "
                    "but fallback to CPU EP has been explicitly disabled by the user.")


def node_event(name: str, op: str, provider: str, types: tuple[str, ...] = ("float",),
               index: int = 0) -> dict[str, Any]:
    """One node's kernel event as ORT's profiler writes it."""
    shapes = [{t: [1, 16]} for t in types]
    return {"cat": "Node", "name": f"{name}_kernel_time", "ph": "X", "dur": 5, "ts": 1,
            "args": {"op_name": op, "provider": provider, "node_index": str(index),
                     "input_type_shape": shapes, "output_type_shape": shapes[:1]}}


def all_on(provider: str) -> list[dict[str, Any]]:
    """The tiny model's three nodes, all on `provider`."""
    return [node_event("/MatMul", "MatMul", provider, index=0),
            node_event("/Add", "Add", provider, index=1),
            node_event("/Softmax", "Softmax", provider, index=2)]


def compute_on_cpu() -> list[dict[str, Any]]:
    """Node-level fallback: CUDA runs MatMul and Softmax, the CPU runs the float Add, plus an
    int64 shape node and a copy that do not count as compute."""
    return [node_event("/MatMul", "MatMul", CUDA_EP, index=0),
            node_event("/Add", "Add", CPU_EP, index=1),
            node_event("/Softmax", "Softmax", CUDA_EP, index=2),
            node_event("/Shape", "Shape", CPU_EP, types=("int64",), index=3),
            node_event("Memcpy", "MemcpyToHost", CPU_EP, index=4)]


def shape_only_on_cpu() -> list[dict[str, Any]]:
    """ORT's own choice: an int64 shape computation on the CPU, all compute on CUDA."""
    return [*all_on(CUDA_EP), node_event("/Shape", "Shape", CPU_EP, types=("int64",), index=3)]


@dataclass
class FakeCuda:
    """What fake CUDA sessions report; `sessions` collects every one created, in order."""

    providers: list[str] = field(default_factory=lambda: [CUDA_EP, CPU_EP])
    events: list[dict[str, Any]] = field(default_factory=lambda: all_on(CUDA_EP))
    honours_strict: bool = True  # raise as ORT does under session.disable_cpu_ep_fallback=1
    sessions: list[FakeCudaSession] = field(default_factory=list)


def config_entry(options: Any, key: str) -> str | None:
    try:
        return options.get_session_config_entry(key)
    except RuntimeError:  # ORT raises for a key that was never set
        return None


class FakeBinding:
    def __init__(self) -> None:
        self.feed: dict[str, np.ndarray] = {}
        self.outputs: list[np.ndarray] = []

    def bind_ortvalue_input(self, name: str, value: Any) -> None:
        self.feed[name] = value.numpy()

    def bind_output(self, name: str, device_type: str, device_id: int) -> None:
        assert device_type == "cuda"

    def synchronize_inputs(self) -> None:
        pass

    def synchronize_outputs(self) -> None:
        pass

    def copy_outputs_to_cpu(self) -> list[np.ndarray]:
        return self.outputs


class FakeCudaSession:
    def __init__(self, real_session: Any, options: Any, fake: FakeCuda) -> None:
        self._real, self._options, self._fake = real_session, options, fake
        self.profiled = bool(options.enable_profiling)

    def get_providers(self) -> list[str]:
        return list(self._fake.providers)

    def get_session_options(self) -> Any:
        return self._options

    def get_inputs(self) -> list[Any]:
        return self._real.get_inputs()

    def get_outputs(self) -> list[Any]:
        return self._real.get_outputs()

    def run(self, names: Any, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self._real.run(names, feed)

    def io_binding(self) -> FakeBinding:
        return FakeBinding()

    def run_with_iobinding(self, binding: FakeBinding) -> None:
        binding.outputs = self._real.run(None, binding.feed)

    def end_profiling(self) -> str:
        assert self.profiled, "end_profiling on a session made without profiling"
        path = Path(f"{self._options.profile_file_prefix}_fake.json")
        session_event = {"cat": "Session", "name": "model_run", "ph": "X", "args": {}}
        path.write_text(json.dumps([session_event, *self._fake.events, *self._fake.events]))
        return str(path)  # events twice: a node that ran twice is still one node


def install_fake_cuda(monkeypatch: pytest.MonkeyPatch, fake: FakeCuda) -> None:
    """Route CUDA session requests to FakeCudaSession (see the module docstring)."""
    import onnxruntime as ort

    from harness.ort import sessions

    real_session, real_ortvalue = ort.InferenceSession, ort.OrtValue

    def session(path: str, sess_options: Any = None, providers: Any = None) -> Any:
        if providers != [CUDA_EP]:
            return real_session(path, sess_options=sess_options, providers=providers)
        strict = config_entry(sess_options, "session.disable_cpu_ep_fallback") == "1"
        on_cpu = any(e["args"]["provider"] == CPU_EP for e in fake.events)
        if strict and on_cpu and fake.honours_strict:
            raise RuntimeError(ORT_STRICT_ERROR)
        cpu_options = sessions.session_options()
        created = FakeCudaSession(real_session(path, sess_options=cpu_options,
                                               providers=[CPU_EP]), sess_options, fake)
        fake.sessions.append(created)
        return created

    class FakeOrtValue:
        @staticmethod
        def ortvalue_from_numpy(x: np.ndarray, device_type: str, device_id: int) -> Any:
            return real_ortvalue.ortvalue_from_numpy(x)  # host memory stands in for the GPU

    monkeypatch.setattr(ort, "InferenceSession", session)
    monkeypatch.setattr(ort, "OrtValue", FakeOrtValue)
    monkeypatch.setattr(ort, "get_available_providers", lambda: [CUDA_EP, CPU_EP])
    monkeypatch.setattr(sessions, "_preload_cuda_libraries", lambda: "")
