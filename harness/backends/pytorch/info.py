"""The `torch` backend as the registry knows it (harness.backends.info): no framework here."""

from harness.backends.info import BackendInfo

INFO = BackendInfo(
    name="torch", label="PyTorch", framework="PyTorch", color="#1f77b4",
    module="harness.backends.pytorch", cls="TorchBackend", extra="torch", frameworks=("torch",),
    preload=("harness.backends.pytorch", "harness.backends.pytorch.exporter", "torch.onnx",
             "onnxscript", "onnxscript.function_libs.torch_lib.ops",
             "torch._dynamo"),  # torch.optim imports _dynamo on first use
    warm_up="harness.backends.pytorch.exporter", fork_safe=True, reference=True)
