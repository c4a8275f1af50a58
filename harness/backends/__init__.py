"""Backend registry. Adding a backend = one folder + one line here."""

from __future__ import annotations

import importlib

from harness.backends.base import Backend, BackendUnavailable, EpochResult

# name -> (module, class, pip extra that installs the framework). The Keras backends each hold
# Keras on one of its own backends; a process can hold only one of them (keras_common).
REGISTRY: dict[str, tuple[str, str, str]] = {
    "keras": ("harness.backends.keras_tf", "KerasBackend", "keras"),
    "keras-jax": ("harness.backends.keras_jax", "KerasJaxBackend", "keras-jax"),
    "keras-torch": ("harness.backends.keras_torch", "KerasTorchBackend", "keras-torch"),
    "torch": ("harness.backends.pytorch", "TorchBackend", "torch"),
}


def backend_names() -> list[str]:
    return list(REGISTRY)


def get_backend(name: str, device: str = "cpu", threads: int | None = None,
                dtype: str = "float32", tf32: bool = False,
                layout: str = "channels_last") -> Backend:
    """Instantiate a backend by name, importing its framework only now."""
    if name not in REGISTRY:
        raise ValueError(f"unknown backend {name!r}; expected one of {backend_names()}")
    module_name, class_name, extra = REGISTRY[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise BackendUnavailable(
            f"backend {name!r} needs a framework that is not installed ({exc.name or exc}); "
            f"install it with: pip install -e '.[{extra}]'"
        ) from None
    return getattr(module, class_name)(device=device, threads=threads, dtype=dtype, tf32=tf32,
                                       layout=layout)


__all__ = ["REGISTRY", "Backend", "BackendUnavailable", "EpochResult", "backend_names",
           "get_backend"]
