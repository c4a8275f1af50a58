"""Inference latency: the frameworks' own predictors, ONNX Runtime on its providers, their
records, and the variants (quantised and float16 files, compiled modes) timed beside them.
The library behind `harness bench` and each job's latency step."""
