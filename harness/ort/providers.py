"""Execution providers: one entry each. The provider that actually runs is always verified."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Provider:
    name: str  # the short name users type: cpu, cuda
    ort_name: str  # onnxruntime's name
    device_type: str  # for IO binding: "cpu" or "cuda"


PROVIDERS: dict[str, Provider] = {
    "cpu": Provider("cpu", "CPUExecutionProvider", "cpu"),
    "cuda": Provider("cuda", "CUDAExecutionProvider", "cuda"),
}


class ProviderUnavailable(RuntimeError):
    """The provider cannot run here; the message says why (never measured on another one)."""


def get_provider(name: str) -> Provider:
    if name not in PROVIDERS:
        raise ValueError(f"unknown provider {name!r}; expected one of {list(PROVIDERS)}")
    return PROVIDERS[name]
