"""Export to ONNX and prove it: the exporters' driver behind `harness export` (weights in,
model.onnx and its parity against the framework out) and the cross-framework parity of one set
of weights. The ONNX interface every exporter meets is harness.backends.onnx_io."""
