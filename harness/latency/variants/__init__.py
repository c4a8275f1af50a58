"""Variants beside the float32 export and the eager framework: ONNX Runtime graph optimisation
levels, int8 (dynamic, static QDQ) and float16 files, compiled framework modes; each variant's
accuracy on the test set, the accuracy gate, and replayable test data beside every file."""

from harness.latency.variants.catalog import (
                                      COMPILE_MODES,
                                      DEFAULT_ACCURACY_GATE,
                                      FAILS_ACCURACY,
                                      ORT_VARIANTS,
                                      expand_ort_variants,
)
from harness.latency.variants.replay import (
                                      read_replay,
                                      replay_dir,
                                      write_framework_replay,
                                      write_replay,
)
from harness.latency.variants.runner import BackendBench, VariantBench, VariantSettings

__all__ = ["COMPILE_MODES", "DEFAULT_ACCURACY_GATE", "FAILS_ACCURACY", "ORT_VARIANTS",
           "BackendBench", "VariantBench", "VariantSettings", "expand_ort_variants",
           "read_replay", "replay_dir", "write_framework_replay", "write_replay"]
