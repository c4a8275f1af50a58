"""Backend registry. Adding a backend = one folder + one line here."""

from __future__ import annotations

import importlib
import importlib.util
from typing import NamedTuple

from harness.backends.base import Backend, BackendUnavailable, EpochResult, KerasBackendConflict
from harness.backends.quiet_output import native_output_to_log


class Entry(NamedTuple):
    module: str  # the backend's package
    cls: str  # its Backend class
    extra: str  # the pip extra that installs its framework
    frameworks: tuple[str, ...]  # the modules it needs (checked without importing them)


# The Keras backends each hold Keras on one of its own backends; a process can hold only one of
# them (harness.backends.keras_common, harness.backends.isolation).
REGISTRY: dict[str, Entry] = {
    "keras": Entry("harness.backends.keras_tf", "KerasBackend", "keras",
                   ("keras", "tensorflow")),
    "keras-jax": Entry("harness.backends.keras_jax", "KerasJaxBackend", "keras-jax",
                       ("keras", "jax")),
    "keras-torch": Entry("harness.backends.keras_torch", "KerasTorchBackend", "keras-torch",
                         ("keras", "torch")),
    "torch": Entry("harness.backends.pytorch", "TorchBackend", "torch", ("torch",)),
}


def backend_names() -> list[str]:
    return list(REGISTRY)


def not_installed(name: str) -> str | None:
    """What backend `name` lacks and the command that installs it, or None when its
    frameworks are installed (found, not imported)."""
    entry = REGISTRY[name]
    missing = [module for module in entry.frameworks if importlib.util.find_spec(module) is None]
    if not missing:
        return None
    return (f"backend {name!r} needs {' and '.join(missing)}, not installed; install it with: "
            f"pip install -e '.[{entry.extra}]'")


def installed_backends() -> list[str]:
    """The backends whose frameworks are installed, in registry order; BackendUnavailable when
    there is none (every command that trains needs one)."""
    found = [name for name in backend_names() if not_installed(name) is None]
    if not found:
        raise BackendUnavailable(
            "no backend is installed: install one, e.g. pip install torch==2.13.0 && pip "
            "install -e '.[torch]' (or .[keras], .[keras-jax], .[keras-torch], .[all])")
    return found


def get_backend(name: str, device: str = "cpu", threads: int | None = None,
                dtype: str = "float32", tf32: bool = False,
                layout: str = "channels_last") -> Backend:
    """Instantiate a backend by name, importing its framework only now."""
    if name not in REGISTRY:
        raise ValueError(f"unknown backend {name!r}; expected one of {backend_names()}")
    entry = REGISTRY[name]
    # before any import: a keras import that fails half-way on a missing framework would leave
    # this process unable to load keras at all
    missing = not_installed(name)
    if missing:
        raise BackendUnavailable(missing)
    # importing and constructing load the framework and find its devices: what its native
    # code prints meanwhile stays off a terminal (harness.backends.quiet_output)
    with native_output_to_log(name) as log:
        try:
            module = importlib.import_module(entry.module)
        except ImportError as exc:
            where = f"; its own output is in {log}" if log else ""
            raise BackendUnavailable(
                f"backend {name!r} needs a framework that is not installed ({exc.name or exc}); "
                f"install it with: pip install -e '.[{entry.extra}]'{where}"
            ) from None
        return getattr(module, entry.cls)(device=device, threads=threads, dtype=dtype,
                                          tf32=tf32, layout=layout)


__all__ = ["REGISTRY", "Backend", "BackendUnavailable", "Entry", "EpochResult",
           "KerasBackendConflict", "backend_names", "get_backend", "installed_backends",
           "not_installed"]
