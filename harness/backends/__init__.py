"""Backend registry. Adding a backend = one folder (with its info.py) + one line in BACKENDS."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

from harness.backends.base import Backend, BackendUnavailable, EpochResult, KerasBackendConflict
from harness.backends.info import BackendInfo
from harness.backends.quiet_output import native_output_to_log

# The backends' folders, in the order commands list them. The Keras backends each hold Keras on
# one of its own backends; a process can hold only one of them (harness.backends.keras_common,
# harness.backends.isolation).
BACKENDS = ("keras_tf", "keras_jax", "keras_torch", "pytorch")


def _info(folder: str) -> BackendInfo:
    """`folder`/info.py's INFO, loaded from its file: importing it as a submodule would run its
    package's __init__, which selects the Keras backend for the whole process."""
    name = f"{__name__}.{folder}.info"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(folder)
                                                      / "info.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # the package's own `from .info import INFO` finds it here
        spec.loader.exec_module(module)
    return sys.modules[name].INFO


REGISTRY: dict[str, BackendInfo] = {info.name: info for info in map(_info, BACKENDS)}


def register(info: BackendInfo) -> None:
    """Add a backend that lives outside harness/backends (a plug-in, a test's fake)."""
    REGISTRY[info.name] = info


def backend_label(name: str) -> str:
    """Its name in a report's text ("Keras on JAX"); an unknown one as given."""
    info = REGISTRY.get(name)
    return info.label if info else name


def reference_backend() -> str:
    """The backend every other one is compared with."""
    return next(name for name, info in REGISTRY.items() if info.reference)


def backend_names() -> list[str]:
    return list(REGISTRY)


def not_installed(name: str) -> str | None:
    """What backend `name` lacks and the command that installs it, or None when its
    frameworks are installed (found, not imported)."""
    info = REGISTRY[name]
    missing = [module for module in info.frameworks if importlib.util.find_spec(module) is None]
    if not missing:
        return None
    return (f"backend {name!r} needs {' and '.join(missing)}, not installed; install it with: "
            f"pip install -e '.[{info.extra}]'")


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
    info = REGISTRY[name]
    # before any import: a keras import that fails half-way on a missing framework would leave
    # this process unable to load keras at all
    missing = not_installed(name)
    if missing:
        raise BackendUnavailable(missing)
    # importing and constructing load the framework and find its devices: what its native
    # code prints meanwhile stays off a terminal (harness.backends.quiet_output)
    with native_output_to_log(name) as log:
        try:
            module = importlib.import_module(info.module)
        except ImportError as exc:
            where = f"; its own output is in {log}" if log else ""
            raise BackendUnavailable(
                f"backend {name!r} needs a framework that is not installed ({exc.name or exc}); "
                f"install it with: pip install -e '.[{info.extra}]'{where}"
            ) from None
        return getattr(module, info.cls)(device=device, threads=threads, dtype=dtype,
                                          tf32=tf32, layout=layout)


__all__ = ["BACKENDS", "REGISTRY", "Backend", "BackendInfo", "BackendUnavailable", "EpochResult",
           "KerasBackendConflict", "backend_label", "backend_names",
           "get_backend", "installed_backends", "not_installed", "reference_backend",
           "register"]
