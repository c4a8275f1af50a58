"""The `keras` backend as the registry knows it (harness.backends.info): no framework here."""

from harness.backends.info import BackendInfo

INFO = BackendInfo(
    name="keras", label="Keras", framework="Keras 3 on TensorFlow", color="#d62728",
    module="harness.backends.keras_tf", cls="KerasBackend", extra="keras",
    frameworks=("keras", "tensorflow"),
    preload=("harness.backends.keras_tf", "harness.backends.keras_tf.exporter", "tf2onnx"),
    fork_safe=True, keras_backend="tensorflow")
