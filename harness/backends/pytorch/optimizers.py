"""The spec's optimizers (Keras 3 meaning) as torch optimizers with the same update maths.

Mapping (g: gradient, t: step count from 1, lr: the step's learning rate, all hyperparameters
from the spec):

* sgd      -> torch.optim.SGD(lr, momentum, nesterov) with a constant lr. Keras keeps
              v = momentum * v - lr * g and adds v (nesterov: momentum * v - lr * g); torch keeps
              b = momentum * b + g and subtracts lr * b (nesterov: lr * (g + momentum * b)). With a
              constant lr, v = -lr * b, so the updates are equal. Under a schedule they are not:
              torch's buffer sums past gradients and multiplies them all by today's lr, Keras'
              holds each one scaled by the lr of its own step. With momentum and a schedule:
              KerasSGD, Keras' update op for op. Keras ignores nesterov without momentum;
              torch refuses it.
* adam     -> KerasAdam: torch.optim.Adam with eps_torch(t) = eps / sqrt(1 - beta_2^t). Keras:
              w -= lr * sqrt(1-b2^t) / (1-b1^t) * m / (sqrt(v) + eps); torch:
              w -= lr / (1-b1^t) * m / (sqrt(v) / sqrt(1-b2^t) + eps_torch); equal for that eps.
* adamw    -> KerasAdamW: torch.optim.AdamW with KerasAdam's epsilon. Both decay decoupled
              from the gradient, before the Adam step, with the step's lr: Keras
              (BaseOptimizer._apply_weight_decay) w -= w * weight_decay * lr on every trainable
              variable (none is excluded unless exclude_from_weight_decay is called, which the
              harness never does: biases and BatchNorm's gamma and beta decay too); torch
              (adamw.py, Adam with decoupled_weight_decay) w *= 1 - lr * weight_decay on every
              parameter of the group, which is all of them. The same product, rounded apart.
              (torch.optim.Adam(weight_decay=...) is another algorithm: it adds
              weight_decay * w to the gradient, through the moments.)
* adadelta -> torch.optim.Adadelta(lr, rho, eps): the same formula, eps inside both roots; lr
              scales the step only, not the accumulated updates, in both.
* rmsprop  -> KerasRMSprop: Keras puts eps inside the root, sqrt(v + eps), torch outside; and
              lr inside the momentum buffer, as Keras does (torch's multiplies the buffer).
* adagrad  -> KerasAdagrad: Keras puts eps inside the root, sqrt(acc + eps), torch outside.
* nadam    -> torch.optim.NAdam(momentum_decay=1.0): Keras 3's schedule is
              mu_t = beta_1 * (1 - 0.5 * 0.96^t); torch's is 0.96^(t * momentum_decay). The rest
              (mu products, bias corrections, eps outside the root) is the same formula; lr
              scales the step only.

A learning-rate schedule (the spec's `train.schedule`): Keras evaluates it at `iterations`, the
steps taken, before each step; here `set_learning_rate` writes the same value
(`Schedule.learning_rate`, float64) into every param group before each step. Every optimizer
above applies the step's lr to that step's update only (none keeps it in a state that a later
lr rescales), except torch's SGD with momentum, hence KerasSGD.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch.optim import Optimizer

from harness.spec import schema

Params = Iterable[torch.Tensor]


class _KerasEpsilon(Optimizer):
    """torch Adam's step with Keras' epsilon: added to sqrt(v) before the bias correction.

    The step count lives in each param group (saved by `state_dict`), like Keras' `iterations`.
    """

    def _keras_epsilon(self, epsilon: float) -> None:
        for group in self.param_groups:
            group.setdefault("keras_epsilon", epsilon)
            group.setdefault("keras_step", 0)

    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        for group in self.param_groups:
            group["keras_step"] += 1
            beta_2 = group["betas"][1]
            group["eps"] = group["keras_epsilon"] / math.sqrt(1.0 - beta_2 ** group["keras_step"])
        return super().step(closure)


class KerasAdam(_KerasEpsilon, torch.optim.Adam):
    """torch Adam with Keras' epsilon (_KerasEpsilon)."""

    def __init__(self, params: Params, lr: float, beta_1: float, beta_2: float,
                 epsilon: float) -> None:
        super().__init__(params, lr=lr, betas=(beta_1, beta_2), eps=epsilon)
        self._keras_epsilon(epsilon)


class KerasAdamW(_KerasEpsilon, torch.optim.AdamW):
    """torch AdamW (decoupled weight decay) with Keras' epsilon (_KerasEpsilon)."""

    def __init__(self, params: Params, lr: float, beta_1: float, beta_2: float,
                 epsilon: float, weight_decay: float) -> None:
        super().__init__(params, lr=lr, betas=(beta_1, beta_2), eps=epsilon,
                         weight_decay=weight_decay)
        self._keras_epsilon(epsilon)


class _KerasOptimizer(Optimizer):
    """Shared step(): closure handling, then one multi-tensor update per param group."""

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if params:
                self._update(group, params, [p.grad for p in params])
        return loss

    def _state_list(self, params: list[torch.Tensor], name: str,
                    fill: float = 0.0) -> list[torch.Tensor]:
        for p in params:
            if name not in self.state[p]:
                self.state[p][name] = torch.full_like(p, fill, memory_format=torch.preserve_format)
        return [self.state[p][name] for p in params]

    def _update(self, group: dict, params: list[torch.Tensor],
                grads: list[torch.Tensor]) -> None:
        raise NotImplementedError


class KerasSGD(_KerasOptimizer):
    """Keras 3 SGD with momentum, op for op: v = momentum * v - lr * g; w += v (nesterov:
    w += momentum * v - lr * g). Equal to torch.optim.SGD only while lr is constant."""

    def __init__(self, params: Params, lr: float, momentum: float, nesterov: bool) -> None:
        super().__init__(params, {"lr": lr, "momentum": momentum, "nesterov": nesterov})

    def _update(self, group: dict, params: list[torch.Tensor],
                grads: list[torch.Tensor]) -> None:
        momentum = group["momentum"]
        velocities = self._state_list(params, "momentum")
        scaled = torch._foreach_mul(grads, group["lr"])
        torch._foreach_mul_(velocities, momentum)
        torch._foreach_sub_(velocities, scaled)
        if group["nesterov"]:
            increments = torch._foreach_mul(velocities, momentum)
            torch._foreach_sub_(increments, scaled)
            torch._foreach_add_(params, increments)
        else:
            torch._foreach_add_(params, velocities)


class KerasRMSprop(_KerasOptimizer):
    """Keras 3 RMSprop, op for op:

    v = rho * v + (1 - rho) * g^2;  centered: a = rho * a + (1 - rho) * g, den = v - a^2 + eps,
    else den = v + eps;  inc = lr * g / sqrt(den);  momentum: mom = momentum * mom + inc,
    w -= mom;  else w -= inc.
    """

    def __init__(self, params: Params, lr: float, rho: float, momentum: float, epsilon: float,
                 centered: bool) -> None:
        super().__init__(params, {"lr": lr, "rho": rho, "momentum": momentum, "eps": epsilon,
                                  "centered": centered})

    def _update(self, group: dict, params: list[torch.Tensor],
                grads: list[torch.Tensor]) -> None:
        rho, eps = group["rho"], group["eps"]
        velocities = self._state_list(params, "velocity")
        torch._foreach_mul_(velocities, rho)
        torch._foreach_addcmul_(velocities, grads, grads, value=1.0 - rho)
        if group["centered"]:
            averages = self._state_list(params, "average_gradient")
            torch._foreach_mul_(averages, rho)
            torch._foreach_add_(averages, grads, alpha=1.0 - rho)
            denominators = torch._foreach_addcmul(velocities, averages, averages, value=-1.0)
            torch._foreach_add_(denominators, eps)
        else:
            denominators = torch._foreach_add(velocities, eps)
        torch._foreach_sqrt_(denominators)
        increments = torch._foreach_mul(grads, group["lr"])
        torch._foreach_div_(increments, denominators)
        if group["momentum"] > 0:
            momentums = self._state_list(params, "momentum")
            torch._foreach_mul_(momentums, group["momentum"])
            torch._foreach_add_(momentums, increments)
            increments = momentums
        torch._foreach_sub_(params, increments)


class KerasAdagrad(_KerasOptimizer):
    """Keras 3 Adagrad: acc starts at initial_accumulator_value; acc += g^2;
    w -= lr * g / sqrt(acc + eps)."""

    def __init__(self, params: Params, lr: float, initial_accumulator_value: float,
                 epsilon: float) -> None:
        super().__init__(params, {"lr": lr, "initial_accumulator_value": initial_accumulator_value,
                                  "eps": epsilon})

    def _update(self, group: dict, params: list[torch.Tensor],
                grads: list[torch.Tensor]) -> None:
        accumulators = self._state_list(params, "accumulator", group["initial_accumulator_value"])
        torch._foreach_addcmul_(accumulators, grads, grads)
        denominators = torch._foreach_add(accumulators, group["eps"])
        torch._foreach_sqrt_(denominators)
        increments = torch._foreach_mul(grads, group["lr"])
        torch._foreach_div_(increments, denominators)
        torch._foreach_sub_(params, increments)


def make_optimizer(params: Params, spec: schema.Optimizer, scheduled: bool = False) -> Optimizer:
    """The torch optimizer that applies `spec`'s Keras 3 update (see the module docstring);
    `scheduled`: its learning rate will change between steps (`set_learning_rate`)."""
    params = list(params)
    if isinstance(spec, schema.SGD):
        if scheduled and spec.momentum > 0:
            return KerasSGD(params, spec.learning_rate, spec.momentum, spec.nesterov)
        return torch.optim.SGD(params, lr=spec.learning_rate, momentum=spec.momentum,
                               nesterov=spec.nesterov and spec.momentum > 0)
    if isinstance(spec, schema.Adam):
        return KerasAdam(params, spec.learning_rate, spec.beta_1, spec.beta_2, spec.epsilon)
    if isinstance(spec, schema.AdamW):
        return KerasAdamW(params, spec.learning_rate, spec.beta_1, spec.beta_2, spec.epsilon,
                          spec.weight_decay)
    if isinstance(spec, schema.Adadelta):
        return torch.optim.Adadelta(params, lr=spec.learning_rate, rho=spec.rho,
                                    eps=spec.epsilon)
    if isinstance(spec, schema.RMSprop):
        return KerasRMSprop(params, spec.learning_rate, spec.rho, spec.momentum, spec.epsilon,
                            spec.centered)
    if isinstance(spec, schema.Adagrad):
        return KerasAdagrad(params, spec.learning_rate, spec.initial_accumulator_value,
                            spec.epsilon)
    if isinstance(spec, schema.Nadam):
        return torch.optim.NAdam(params, lr=spec.learning_rate, betas=(spec.beta_1, spec.beta_2),
                                 eps=spec.epsilon, momentum_decay=1.0)
    raise TypeError(f"unhandled optimizer {spec!r}")  # pragma: no cover - the union is closed


def set_learning_rate(optimizer: Optimizer, train: schema.TrainSpec, steps: int,
                      steps_per_epoch: int | None) -> None:
    """Every param group's lr for the step taken after `steps` steps, as the spec's schedule
    says (nothing without one: the optimizer keeps its constant lr)."""
    if train.schedule is None:
        return
    lr = train.schedule.learning_rate(train.optimizer.learning_rate, steps, steps_per_epoch)
    for group in optimizer.param_groups:
        group["lr"] = lr
