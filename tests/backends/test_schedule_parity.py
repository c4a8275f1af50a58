"""Learning-rate schedules (and AdamW's decay, which uses the step's rate) compute the same maths
in Keras and PyTorch: each backend's rate at every optimizer step is the spec's formula, and
after the same steps both hold the same float64 weights, for every optimizer.

Under a changing rate torch.optim.SGD with momentum is another algorithm than Keras' SGD (its
buffer sums raw gradients that the current rate then scales); the negative controls show that
these checks see it, and see a schedule counted in steps where the spec says epochs, and AdamW's
decay coupled into the gradient (torch.optim.Adam(weight_decay=...)).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("keras")

from test_parity import (  # noqa: E402  (same folder)
    CONSTANT_RTOL,
    FLOAT64_RTOL,
    OPTIMIZERS,
    TRAIN_SPEC,
)

from harness.backends import Backend, get_backend  # noqa: E402
from harness.data import load_arrays, num_batches  # noqa: E402
from harness.spec import ModelSpec, initial_weights, parse_spec  # noqa: E402

# Each changes the rate often within a few steps or epochs; all constants dyadic (see
# test_parity.OPTIMIZERS), though the schedules compute in the model's dtype anyway.
SCHEDULES = {
    "step": "{name: step, step_size: 3, gamma: 0.5, unit: step}",
    # a new rate every step, irrational ones (0.25 ** (t / 4))
    "exponential": "{name: exponential, decay_steps: 4, decay_rate: 0.25, staircase: false,"
                   " unit: step}",
    "exponential_staircase": "{name: exponential, decay_steps: 3, decay_rate: 0.75,"
                             " staircase: true, unit: step}",
    # reaches alpha * lr at step 6, then stays there
    "cosine": "{name: cosine, decay_steps: 6, alpha: 0.25, unit: step}",
    "step_epoch": "{name: step, step_size: 1, gamma: 0.5, unit: epoch}",
    "exponential_epoch": "{name: exponential, decay_steps: 2, decay_rate: 0.25,"
                         " staircase: false, unit: epoch}",
    "cosine_epoch": "{name: cosine, decay_steps: 2, alpha: 0.125, unit: epoch}",
}
STEPS, BATCH = 8, 50  # the unit-step cases: 8 steps of one epoch, as test_parity
# the unit-epoch cases: 3 epochs of 230 images, 5 steps each, the last of 30
EPOCHS, N_EPOCHS_TRAIN = 3, 230

Tamper = Callable[[Any], None]


def _spec(optimizer: str, schedule: str) -> ModelSpec:
    text = TRAIN_SPEC.format(label=f"{optimizer}_{schedule}", optimizer=OPTIMIZERS[optimizer])
    return parse_spec(text + f"  schedule: {SCHEDULES[schedule]}\n")


def reference_rates(schedule: dict[str, Any], base: float, steps: int,
                    steps_per_epoch: int) -> np.ndarray:
    """The rate of each of the first `steps` optimizer steps, from the spec's formulas, in
    numpy (t: steps taken before the step, or whole epochs completed)."""
    taken = np.arange(steps)
    t = taken if schedule["unit"] == "step" else taken // steps_per_epoch
    t = t.astype(np.float64)
    if schedule["name"] == "step":
        return base * schedule["gamma"] ** np.floor(t / schedule["step_size"])
    if schedule["name"] == "exponential":
        p = t / schedule["decay_steps"]
        return base * schedule["decay_rate"] ** (np.floor(p) if schedule["staircase"] else p)
    n, alpha = schedule["decay_steps"], schedule["alpha"]
    completed = np.minimum(t, n) / n
    return base * ((1 - alpha) * 0.5 * (1 + np.cos(np.pi * completed)) + alpha)


@pytest.fixture(scope="module")
def exact_backends() -> tuple[Backend, Backend]:
    return get_backend("keras", dtype="float64"), get_backend("torch", dtype="float64")


def _train_both(spec: ModelSpec, backends: tuple[Backend, Backend], n: int, epochs: int,
                tamper: Tamper | None = None) -> dict[str, dict[str, np.ndarray]]:
    """`epochs` epochs over the first `n` images (each epoch in its own order) from the same
    start in each backend: the final weights. `tamper`: done to the torch model first."""
    arrays = load_arrays(spec.input, limit=n, limit_test=10)
    final = {}
    for backend in backends:
        model = backend.build(spec, num_batches(n, BATCH))
        backend.set_weights(model, initial_weights(spec))
        if backend.name == "torch" and tamper is not None:
            tamper(model)
        data = backend.to_native(arrays.x_train, arrays.y_train)
        for epoch in range(epochs):
            backend.train_epoch(model, data, np.random.default_rng(epoch).permutation(n), BATCH)
        final[backend.name] = backend.get_weights(model)
    start = initial_weights(spec)
    assert not np.allclose(final["keras"]["4.kernel"], start["4.kernel"])  # training moved it
    return final


def _assert_same_weights(final: dict[str, dict[str, np.ndarray]], optimizer: str,
                         what: str) -> None:
    rtol = CONSTANT_RTOL.get(optimizer, FLOAT64_RTOL)
    for key, value in final["keras"].items():
        assert value.dtype == final["torch"][key].dtype == np.float64, key
        np.testing.assert_allclose(final["torch"][key], value, rtol=rtol, atol=rtol * 1e-2,
                                   err_msg=f"{what}: {key}")


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_every_optimizer_under_a_rate_that_changes_every_step(
        optimizer: str, exact_backends: tuple[Backend, Backend]) -> None:
    """8 steps, a new (irrational) rate at each: the same weights and BN statistics."""
    final = _train_both(_spec(optimizer, "exponential"), exact_backends, STEPS * BATCH, 1)
    _assert_same_weights(final, optimizer, f"{optimizer} exponential")


@pytest.mark.parametrize("schedule", ["step", "exponential_staircase", "cosine"])
@pytest.mark.parametrize("optimizer", ["sgd_momentum", "sgd_nesterov", "rmsprop_centered",
                                       "adamw"])
def test_every_schedule_in_steps(optimizer: str, schedule: str,
                                 exact_backends: tuple[Backend, Backend]) -> None:
    final = _train_both(_spec(optimizer, schedule), exact_backends, STEPS * BATCH, 1)
    _assert_same_weights(final, optimizer, f"{optimizer} {schedule}")


@pytest.mark.parametrize("schedule", ["step_epoch", "exponential_epoch", "cosine_epoch"])
@pytest.mark.parametrize("optimizer", ["sgd_momentum", "adamw", "adadelta"])
def test_schedules_in_epochs_with_a_partial_last_batch(
        optimizer: str, schedule: str, exact_backends: tuple[Backend, Backend]) -> None:
    """3 epochs of 5 steps (the last batch 30 of 50): the rate changes at each epoch's start
    in both backends, 15 steps in all."""
    final = _train_both(_spec(optimizer, schedule), exact_backends, N_EPOCHS_TRAIN, EPOCHS)
    _assert_same_weights(final, optimizer, f"{optimizer} {schedule}")


# --------------------------------------------------------------------------- the rates

RATE_STEPS, RATE_BATCH, RATE_STEPS_PER_EPOCH = 14, 10, 3


def _rates(backend: Backend, spec: ModelSpec) -> list[float]:
    """The rate each backend's optimizer uses at each of RATE_STEPS steps, one step at a
    time: Keras' is its optimizer's `learning_rate` before the step (the schedule at
    `iterations`), torch's the param groups' lr the step ran with."""
    arrays = load_arrays(spec.input, limit=RATE_BATCH, limit_test=10)
    model = backend.build(spec, RATE_STEPS_PER_EPOCH)
    data = backend.to_native(arrays.x_train, arrays.y_train)
    rates = []
    for _ in range(RATE_STEPS):
        if backend.name == "keras":
            rates.append(float(np.asarray(model.optimizer.learning_rate)))
        backend.train_epoch(model, data, np.arange(RATE_BATCH), RATE_BATCH)
        if backend.name == "torch":
            assert len({group["lr"] for group in model.optimizer.param_groups}) == 1
            rates.append(model.optimizer.param_groups[0]["lr"])
    return rates


@pytest.mark.parametrize("schedule", list(SCHEDULES))
def test_each_steps_rate_is_the_formula(schedule: str,
                                        exact_backends: tuple[Backend, Backend]) -> None:
    spec = _spec("sgd_momentum", schedule)
    expected = reference_rates(spec.train.schedule.model_dump(), spec.train.optimizer.learning_rate,
                               RATE_STEPS, RATE_STEPS_PER_EPOCH)
    assert len(set(expected.tolist())) > 2  # the rate does change
    for backend in exact_backends:
        np.testing.assert_allclose(_rates(backend, spec), expected, rtol=4 * np.finfo(float).eps,
                                   atol=0, err_msg=f"{backend.name} {schedule}")


# --------------------------------------------------------------------------- negative controls


def _torch_sgd(model: Any) -> None:
    import torch

    optimizer = model.spec.train.optimizer
    model.optimizer = torch.optim.SGD(model.net.parameters(), lr=optimizer.learning_rate,
                                      momentum=optimizer.momentum)


def _per_step(model: Any) -> None:
    model.steps_per_epoch = 1  # every step counted as an epoch


def _coupled_decay(model: Any) -> None:
    """torch.optim.Adam(weight_decay=...) with Keras' epsilon: L2 through the gradient."""
    from harness.backends.pytorch.optimizers import KerasAdam

    spec = model.spec.train.optimizer
    model.optimizer = KerasAdam(model.net.parameters(), spec.learning_rate, spec.beta_1,
                                spec.beta_2, spec.epsilon)
    model.optimizer.param_groups[0]["weight_decay"] = spec.weight_decay


@pytest.mark.parametrize(("optimizer", "schedule", "tamper", "epochs"), [
    ("sgd_momentum", "exponential", _torch_sgd, 1),
    ("sgd_nesterov", "cosine", _torch_sgd, 1),
    ("sgd_momentum", "step_epoch", _per_step, EPOCHS),
    ("adamw", "cosine", _coupled_decay, 1),
], ids=["torch-sgd-momentum", "torch-sgd-nesterov", "epochs-counted-as-steps", "adamw-coupled"])
def test_the_checks_see_a_wrong_torch_side(optimizer: str, schedule: str, tamper: Tamper,
                                           epochs: int,
                                           exact_backends: tuple[Backend, Backend]) -> None:
    n = STEPS * BATCH if epochs == 1 else N_EPOCHS_TRAIN
    final = _train_both(_spec(optimizer, schedule), exact_backends, n, epochs, tamper)
    with pytest.raises(AssertionError, match=optimizer):
        _assert_same_weights(final, optimizer, f"{optimizer} {schedule}")


def test_without_a_schedule_torch_sgd_is_kept(exact_backends: tuple[Backend, Backend]) -> None:
    """The constant-rate fast path: torch's own SGD, exactly Keras' while lr does not change
    (test_parity.py); KerasSGD only under a schedule."""
    import torch

    from harness.backends.pytorch.optimizers import KerasSGD

    torch_backend = exact_backends[1]
    constant = parse_spec(TRAIN_SPEC.format(label="c", optimizer=OPTIMIZERS["sgd_momentum"]))
    assert type(torch_backend.build(constant).optimizer) is torch.optim.SGD
    scheduled = _spec("sgd_momentum", "cosine")
    assert type(torch_backend.build(scheduled).optimizer) is KerasSGD
    assert type(torch_backend.build(_spec("sgd", "cosine")).optimizer) is torch.optim.SGD


# --------------------------------------------------------------------------- saving


def test_a_scheduled_keras_model_saves_loads_and_clones_its_schedule(tmp_path: Any) -> None:
    """The schedule is registered Keras: a `.keras` file and an optimizer's config (what
    Backend.compiled copies) carry it, steps_per_epoch included."""
    import keras

    from harness.backends.keras_common.schedules import SpecSchedule

    backend = get_backend("keras")
    spec = _spec("adamw", "cosine_epoch")
    arrays = load_arrays(spec.input, limit=100, limit_test=10)
    model = backend.build(spec, num_batches(100, BATCH))
    backend.train_epoch(model, backend.to_native(arrays.x_train, arrays.y_train),
                        np.arange(100), BATCH)
    loaded = keras.models.load_model(backend.save(model, tmp_path))
    clone = model.optimizer.from_config(model.optimizer.get_config())
    for optimizer in (loaded.optimizer, clone):
        schedule = optimizer._learning_rate
        assert isinstance(schedule, SpecSchedule)
        assert schedule.get_config() == model.optimizer._learning_rate.get_config()
        assert schedule.steps_per_epoch == 2
    assert int(loaded.optimizer.iterations) == 2
    assert float(loaded.optimizer.learning_rate) == pytest.approx(
        float(model.optimizer.learning_rate), rel=1e-7)
