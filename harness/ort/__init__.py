"""ONNX Runtime: providers, sessions (the provider that runs is verified), timing.

onnxruntime is imported inside the functions, so importing this package costs nothing.
"""

from harness.ort.providers import PROVIDERS, Provider, ProviderUnavailable, get_provider
from harness.ort.sessions import create_session, run_batched, session_info, session_options
from harness.ort.timing import bare_session_loop, harness_vs_bare, measure_session, ort_latency

__all__ = ["PROVIDERS", "Provider", "ProviderUnavailable", "bare_session_loop", "create_session",
           "get_provider", "harness_vs_bare", "measure_session", "ort_latency", "run_batched",
           "session_info", "session_options"]
