"""What the rest of the harness knows about a backend, declared by the backend itself.

Each backend folder holds an `info.py` with one `INFO = BackendInfo(...)` and no other import,
so the registry (harness.backends) collects every backend's INFO without loading a framework.
Every table keyed by backend name (display names, plot colours, what a job server imports
ahead, which backends fork cleanly) reads it from there.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BackendInfo:
    name: str  # what commands, job ids and records call it (--backends keras-jax)
    label: str  # its name in a report's text and legends ("Keras on JAX")
    framework: str  # what it runs, said in full ("Keras 3 on JAX")
    color: str  # its colour in every plot
    module: str  # its package, imported only to run it
    cls: str  # its Backend class in `module`
    extra: str  # the pip extra that installs its framework (pyproject.toml)
    frameworks: tuple[str, ...]  # the modules it needs, checked without importing them
    # modules its job steps import: a job imports them first, so imports are timed apart from
    # the work, and a warm job server imports them once for many jobs (harness.backends.preload)
    preload: tuple[str, ...] = ()
    warm_up: str | None = None  # a module whose warm_up(opset) a warm job server runs once
    fork_safe: bool = False  # a process that imported it forks cleanly (harness.run.job_server)
    keras_backend: str | None = None  # the backend it holds Keras on; None: not Keras
    reference: bool = False  # what every other backend is compared with (one of them)

