"""The `keras-torch` backend as the registry knows it (harness.backends.info): no framework
here."""

from harness.backends.info import BackendInfo

INFO = BackendInfo(
    name="keras-torch", label="Keras on PyTorch", framework="Keras 3 on PyTorch",
    color="#9467bd", module="harness.backends.keras_torch", cls="KerasTorchBackend",
    extra="keras-torch", frameworks=("keras", "torch"),
    preload=("harness.backends.keras_torch", "harness.backends.keras_torch.exporter",
             "torch.onnx", "onnxscript"),
    keras_backend="torch")
