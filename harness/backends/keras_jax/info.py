"""The `keras-jax` backend as the registry knows it (harness.backends.info): no framework here."""

from harness.backends.info import BackendInfo

INFO = BackendInfo(
    name="keras-jax", label="Keras on JAX", framework="Keras 3 on JAX", color="#2ca02c",
    module="harness.backends.keras_jax", cls="KerasJaxBackend", extra="keras-jax",
    frameworks=("keras", "jax"),
    # it converts in a Keras-on-TensorFlow child process: nothing more to import here
    preload=("harness.backends.keras_jax", "harness.backends.keras_jax.exporter"),
    keras_backend="jax")
