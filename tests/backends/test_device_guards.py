"""Never CPU numbers under a CUDA label from the frameworks' own predictors, proven without a GPU:
a Keras `cuda` backend in a process where the GPUs are present but hidden (an earlier `cpu`
backend hid them) is refused, a Keras predictor that TensorFlow soft-placed on the CPU is
refused, and a bench record of a predictor that falls back to the CPU says `unavailable`."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from harness.backends import BackendUnavailable

FAST = {"warmup": 1, "min_runs": 3, "min_seconds": 0.0, "max_seconds": None}
TINY_MLP = """
name: tiny_mlp
input: {shape: [784]}
layers:
  - {type: dense, units: 4, activation: relu}
  - {type: dense, units: 10, activation: softmax}
train:
  optimizer: {name: sgd, learning_rate: 0.1, momentum: 0.0, nesterov: false}
  batch_size: 4
  epochs: 1
"""


@pytest.fixture()
def tf() -> Any:
    pytest.importorskip("keras")
    tf = pytest.importorskip("tensorflow")
    if tf.config.list_physical_devices("GPU"):
        pytest.skip("a real GPU is present: these tests fake one")
    return tf


def fake_gpu_present(tf: Any, monkeypatch: pytest.MonkeyPatch, *, visible: bool,
                     logical: bool) -> None:
    """One physical GPU; visible to TF and opened by its runtime only as asked."""
    gpu = tf.config.PhysicalDevice(name="/physical_device:GPU:0", device_type="GPU")
    physical, visible_of = tf.config.list_physical_devices, tf.config.get_visible_devices
    logical_of = tf.config.list_logical_devices

    def with_gpu(real: Any, fake: Any, present: bool) -> Any:
        def listing(device_type: str | None = None) -> list[Any]:
            extra = [fake] if present and device_type in (None, "GPU") else []
            return real(device_type) + extra
        return listing

    monkeypatch.setattr(tf.config, "list_physical_devices", with_gpu(physical, gpu, True))
    monkeypatch.setattr(tf.config, "get_visible_devices", with_gpu(visible_of, gpu, visible))
    logical_gpu = tf.config.LogicalDevice(name="/device:GPU:0", device_type="GPU")
    monkeypatch.setattr(tf.config, "list_logical_devices",
                        with_gpu(logical_of, logical_gpu, logical))


def test_keras_cuda_after_a_cpu_backend_is_refused(tf: Any,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.backends.keras_tf import KerasBackend

    KerasBackend(device="cpu")  # hides the GPUs from TensorFlow for the rest of the process
    assert tf.config.get_visible_devices("GPU") == []
    fake_gpu_present(tf, monkeypatch, visible=False, logical=False)
    assert tf.config.list_physical_devices("GPU")  # the old check would have let it through
    with pytest.raises(BackendUnavailable, match="can use none in this process: visible \\[\\]"):
        KerasBackend(device="cuda")


def test_keras_cuda_with_a_gpu_the_runtime_did_not_open_is_refused(
        tf: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.backends.keras_tf import KerasBackend

    fake_gpu_present(tf, monkeypatch, visible=True, logical=False)
    with pytest.raises(BackendUnavailable, match="list_logical_devices\\('GPU'\\) == \\[\\]"):
        KerasBackend(device="cuda")


def test_keras_cuda_predictor_soft_placed_on_the_cpu_is_refused(
        tf: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.backends.keras_tf import KerasBackend
    from harness.spec import initial_weights, parse_spec

    spec = parse_spec(TINY_MLP)
    cpu = KerasBackend(device="cpu")
    model = cpu.build(spec)
    cpu.set_weights(model, initial_weights(spec))
    x = np.ones((2, 784), dtype=np.float32)
    cpu.native_predictor(model, x)()  # on the CPU, asked for the CPU: fine
    fake_gpu_present(tf, monkeypatch, visible=True, logical=True)
    cuda = KerasBackend(device="cuda")  # every device check passes: a GPU is "there"
    # ... but TF has no GPU to run on and soft-places '/GPU:0' work on the CPU
    with pytest.raises(BackendUnavailable, match="asked for /GPU:0 but its result is on .*CPU"):
        cuda.native_predictor(model, x)


class FallbackPredictorBackend:
    """A backend whose predictor lands its result on `device`, or refuses as Keras now does."""

    def __init__(self, device: str | None) -> None:
        self.device = device

    def native_predictor(self, model: Any, x: np.ndarray) -> Any:
        if self.device is None:
            raise BackendUnavailable("the result is on CPU:0, not on /GPU:0")
        return lambda: SimpleNamespace(device=self.device)


@pytest.mark.parametrize(("device", "reason"), [
    ("cpu", "fake ran on cpu, not on cuda"),
    (None, "the result is on CPU:0, not on /GPU:0"),
], ids=["result-on-cpu", "predictor-refuses"])
def test_bench_records_a_native_cpu_fallback_as_unavailable(device: str | None,
                                                            reason: str) -> None:
    from harness.latency.native import native_batch_records

    record = native_batch_records(FallbackPredictorBackend(device), None, "fake", "cuda", 2,
                           np.ones((2, 784), dtype=np.float32), None, FAST)
    assert record["status"] == "unavailable" and record["reason"] == reason
    assert record["stats"] is None  # never CPU numbers under a CUDA label


def test_bench_times_a_native_result_on_the_gpu() -> None:
    from harness.latency.native import native_batch_records

    record = native_batch_records(FallbackPredictorBackend("cuda:0"), None, "fake", "cuda", 2,
                           np.ones((2, 784), dtype=np.float32), None, FAST)
    assert record["status"] == "ok" and record["provider_used"] == "cuda:0"
    assert record["stats"]["runs"] >= FAST["min_runs"]
