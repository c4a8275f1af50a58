"""What a backend's job steps import, imported ahead: a job times its imports apart from its
work, and a warm job server imports them once for many jobs (and warms up what each job's first
use would do again)."""

from __future__ import annotations

import contextlib
import importlib

from harness.backends.onnx_io import DEFAULT_OPSET

# Modules each backend's steps import; importing them first times imports apart from the work
# (and a warm job server imports them once for many jobs).
_IMPORTS = {"keras": ("harness.backends.keras_tf", "harness.backends.keras_tf.exporter",
                      "tf2onnx"),
            "torch": ("harness.backends.pytorch", "harness.backends.pytorch.exporter",
                      "torch.onnx", "onnxscript", "onnxscript.function_libs.torch_lib.ops",
                      "torch._dynamo"),  # torch.optim imports _dynamo on first use
            # converts in a Keras-on-TensorFlow child process: nothing more to import here
            "keras-jax": ("harness.backends.keras_jax", "harness.backends.keras_jax.exporter"),
            "keras-torch": ("harness.backends.keras_torch", "harness.backends.keras_torch.exporter",
                            "torch.onnx", "onnxscript")}


# Backends whose converter a warm job server warms up before forking jobs (warm_up).
_WARM_UPS = {"torch": "harness.backends.pytorch.exporter"}


def import_frameworks(backend: str) -> None:
    """Import what the steps will (a missing framework is the train step's error to report)."""
    for module in (*_IMPORTS.get(backend, ()), "onnx", "onnxruntime"):
        try:
            importlib.import_module(module)
        except ImportError:
            continue


def warm_up(backend: str, opset: int = DEFAULT_OPSET) -> None:
    """For a process that forks many jobs: do once what each job's first use would do again
    (torch.onnx's first export). A failure here is left for the job's own step to report."""
    if backend not in _WARM_UPS:
        return
    with contextlib.suppress(Exception):  # the job's own step reports what fails here
        importlib.import_module(_WARM_UPS[backend]).warm_up(opset)
