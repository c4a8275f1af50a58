"""The spec's learning-rate schedules (harness.spec.schema: step, exponential, cosine) as one
Keras LearningRateSchedule, evaluated by the optimizer at its `iterations` before each step.

Keras' built-ins (ExponentialDecay, CosineDecay) are not used: they compute in float32 whatever
the model's dtype (their learning rate is a Python float made a float32 tensor), so a float64
model's rates would be float32-rounded, 6e-8 off PyTorch's, far above the float64 parity checks;
and none counts whole epochs. `SpecSchedule` computes in the model's dtype, integer counts
divided as integers, the same formula in the same order as `Schedule.learning_rate` (the
PyTorch backend's). It is registered, so a saved `.keras` model and an optimizer's config
(Backend.compiled) carry it.
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from harness.spec import schema


@keras.saving.register_keras_serializable(package="harness")
class SpecSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """`schedule` (a `schema.Schedule` dumped to a dict) from `learning_rate`, in `dtype`;
    `steps_per_epoch`: the optimizer steps of one epoch, needed by a schedule in epochs."""

    def __init__(self, learning_rate: float, schedule: dict[str, Any],
                 steps_per_epoch: int | None = None, dtype: str = "float32") -> None:
        super().__init__()
        self.learning_rate = float(learning_rate)
        self.schedule = dict(schedule)
        self.steps_per_epoch = steps_per_epoch
        self.dtype = dtype

    def _constant(self, value: float) -> Any:
        # straight to the dtype: ops.cast(0.7, "float64") would go through a float32 tensor
        return ops.convert_to_tensor(value, dtype=self.dtype)

    def __call__(self, step: Any) -> Any:
        spec = self.schedule
        if spec["unit"] == "epoch":
            if self.steps_per_epoch is None:
                raise ValueError("a schedule counted in epochs needs the steps of one epoch "
                                 "(build the model with steps_per_epoch)")
            step = ops.floor_divide(step, self.steps_per_epoch)
        learning_rate = self._constant(self.learning_rate)
        if spec["name"] == "step":
            exponent = ops.cast(ops.floor_divide(step, spec["step_size"]), self.dtype)
            return ops.multiply(learning_rate, ops.power(self._constant(spec["gamma"]),
                                                         exponent))
        if spec["name"] == "exponential":
            if spec["staircase"]:
                exponent = ops.cast(ops.floor_divide(step, spec["decay_steps"]), self.dtype)
            else:
                exponent = ops.divide(ops.cast(step, self.dtype),
                                      self._constant(spec["decay_steps"]))
            return ops.multiply(learning_rate, ops.power(self._constant(spec["decay_rate"]),
                                                         exponent))
        decay_steps = self._constant(spec["decay_steps"])
        completed = ops.divide(ops.minimum(ops.cast(step, self.dtype), decay_steps), decay_steps)
        cosine = ops.multiply(self._constant(0.5), ops.add(
            self._constant(1.0), ops.cos(ops.multiply(self._constant(math.pi), completed))))
        alpha = self._constant(spec["alpha"])
        decayed = ops.add(ops.multiply(ops.subtract(self._constant(1.0), alpha), cosine), alpha)
        return ops.multiply(learning_rate, decayed)

    def get_config(self) -> dict[str, Any]:
        return {"learning_rate": self.learning_rate, "schedule": dict(self.schedule),
                "steps_per_epoch": self.steps_per_epoch, "dtype": self.dtype}


def learning_rate(optimizer: schema.Optimizer, schedule: schema.Schedule | None,
                  steps_per_epoch: int | None, dtype: str) -> float | SpecSchedule:
    """What a Keras optimizer's `learning_rate` is: the spec's number, or its schedule."""
    if schedule is None:
        return optimizer.learning_rate
    return SpecSchedule(optimizer.learning_rate, schedule.model_dump(mode="json"),
                        steps_per_epoch, dtype)
