"""PyTorch backend: the Keras function (numpy references in NHWC) and Keras 3's update maths."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pydantic import TypeAdapter  # noqa: E402

from harness.backends import BackendUnavailable, get_backend  # noqa: E402
from harness.backends.pytorch import TorchBackend, build_module  # noqa: E402
from harness.backends.pytorch.optimizers import make_optimizer  # noqa: E402
from harness.spec import (  # noqa: E402
    ModelSpec,
    Weights,
    infer,
    initial_weights,
    list_specs,
    load_spec,
    parse_spec,
)
from harness.spec import layers as L  # noqa: E402
from harness.spec.schema import OPTIMIZERS, Optimizer  # noqa: E402

ADAM = "{name: adam, learning_rate: 0.01, beta_1: 0.9, beta_2: 0.999, epsilon: 1.0e-7}"


def make_spec(shape: list[int], layers: list[str], optimizer: str = ADAM) -> ModelSpec:
    body = "\n".join(f"  - {layer}" for layer in layers)
    return parse_spec(f"name: t\ninput: {{shape: {shape}}}\nlayers:\n{body}\n"
                      f"train: {{optimizer: {optimizer}, batch_size: 32, epochs: 1}}\n")


@pytest.fixture(scope="module")
def backend() -> TorchBackend:
    return TorchBackend()


def random_weights(spec: ModelSpec, seed: int = 0) -> Weights:
    """Arrays of the right shapes where every value matters (no zeros / ones)."""
    rng = np.random.default_rng(seed)
    out = {}
    for key, value in initial_weights(spec).items():
        kind = key.split(".")[1]
        if kind == "kernel":
            fan_in = math.prod(value.shape[:-1])
            out[key] = rng.normal(0, 1.5 / math.sqrt(fan_in), value.shape)
        elif kind in ("gamma", "moving_variance"):
            out[key] = rng.uniform(0.5, 1.5, value.shape)
        else:
            out[key] = rng.normal(0, 0.2, value.shape)
    return {k: v.astype(np.float32) for k, v in out.items()}


# --------------------------------------------------------------------------- numpy reference


def tf_same(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow 'same' padding (before, after): the odd cell goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def windows(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int], padding: str,
            fill: float) -> np.ndarray:
    """(kh * kw, N, Ho, Wo, C) window values of an NHWC array, padded with `fill`."""
    pads = [(0, 0), (0, 0), (0, 0), (0, 0)]
    if padding == "same":
        pads[1] = tf_same(x.shape[1], kernel[0], stride[0])
        pads[2] = tf_same(x.shape[2], kernel[1], stride[1])
    x = np.pad(x, pads, constant_values=fill)
    rows = (x.shape[1] - kernel[0]) // stride[0] + 1
    cols = (x.shape[2] - kernel[1]) // stride[1] + 1
    return np.stack([x[:, a:a + stride[0] * (rows - 1) + 1:stride[0],
                       b:b + stride[1] * (cols - 1) + 1:stride[1], :]
                     for a in range(kernel[0]) for b in range(kernel[1])])


def activate(x: np.ndarray, name: str) -> np.ndarray:
    erf = np.vectorize(math.erf)
    alpha, scale = 1.6732632423543772, 1.0507009873554805
    return {
        "linear": lambda: x, "relu": lambda: np.maximum(x, 0), "tanh": lambda: np.tanh(x),
        "sigmoid": lambda: 1 / (1 + np.exp(-x)),
        "softmax": lambda: np.exp(x - x.max(-1, keepdims=True))
        / np.exp(x - x.max(-1, keepdims=True)).sum(-1, keepdims=True),
        "elu": lambda: np.where(x > 0, x, np.expm1(np.minimum(x, 0))),
        "selu": lambda: scale * np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))),
        "softplus": lambda: np.logaddexp(0, x),
        "gelu": lambda: 0.5 * x * (1 + erf(x / math.sqrt(2))),
        "gelu_tanh": lambda: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi)
                                                    * (x + 0.044715 * x ** 3))),
        "swish": lambda: x / (1 + np.exp(-x)),
    }[name]()


def reference_logits(spec: ModelSpec, weights: Weights, x: np.ndarray) -> np.ndarray:
    """Keras' eval-mode function in float64 NHWC numpy; returns the final softmax's input."""
    w = {k: v.astype(np.float64) for k, v in weights.items()}
    x = x.astype(np.float64)
    for i, layer in enumerate(spec.layers):
        if isinstance(layer, L.Conv2D):
            kernel = w[f"{i}.kernel"]
            win = windows(x, layer.kernel_size, layer.strides, layer.padding, 0.0)
            kk = kernel.reshape(-1, *kernel.shape[2:])
            x = np.einsum("knhwc,kco->nhwo", win, kk) + w.get(f"{i}.bias", 0.0)
        elif isinstance(layer, L.Dense):
            x = x @ w[f"{i}.kernel"] + w.get(f"{i}.bias", 0.0)
        elif isinstance(layer, L.MaxPool2D):
            x = windows(x, layer.pool_size, layer.resolved_strides, layer.padding, np.nan)
            x = np.nanmax(x, axis=0)
        elif isinstance(layer, L.AvgPool2D):  # padded cells excluded, as in TensorFlow
            x = windows(x, layer.pool_size, layer.resolved_strides, layer.padding, np.nan)
            x = np.nanmean(x, axis=0)
        elif isinstance(layer, L.BatchNorm):
            x = ((x - w[f"{i}.moving_mean"]) / np.sqrt(w[f"{i}.moving_variance"] + layer.epsilon)
                 * w[f"{i}.gamma"] + w[f"{i}.beta"])
        elif isinstance(layer, L.Flatten):
            x = x.reshape(len(x), -1)  # Keras: (H, W, C) row-major
        activation = getattr(layer, "activation", "linear")
        if i < len(spec.layers) - 1:
            x = activate(x, activation)
    return x


def check_forward(backend: TorchBackend, spec: ModelSpec, n: int = 4, seed: int = 0,
                  varied: bool = True) -> None:
    """Eval-mode logits and probabilities equal the numpy reference; `varied`: the function
    must also depend on the input (deep sigmoid zoo nets saturate, so they skip that)."""
    model = backend.build(spec)
    weights = random_weights(spec, seed)
    backend.set_weights(model, weights)
    x = np.random.default_rng(seed + 1).normal(0, 1, (n, *spec.input.shape)).astype(np.float32)
    expected = reference_logits(spec, weights, x)
    model.net.eval()
    with torch.no_grad():
        logits = model.net.logits(torch.from_numpy(x)).numpy()
    scale = np.abs(expected).max()
    assert scale > 1e-2 and (not varied or expected.std(axis=0).max() > 1e-3)
    np.testing.assert_allclose(logits, expected, rtol=0, atol=1e-5 * max(scale, 1))
    probs = backend.predict(model, x, batch_size=3)
    assert probs.dtype == np.float32
    np.testing.assert_allclose(probs, activate(expected, "softmax"), rtol=0, atol=1e-5)


# --------------------------------------------------------------------------- zoo


@pytest.mark.parametrize("name", list_specs())
def test_zoo_param_counts_match_infer(backend: TorchBackend, name: str) -> None:
    spec = load_spec(name)
    summary = infer(spec)
    counts = backend.count_params(backend.build(spec))
    assert counts == (summary.trainable_params, summary.non_trainable_params)


@pytest.mark.parametrize("name", list_specs())
def test_zoo_weights_round_trip_exactly(backend: TorchBackend, name: str) -> None:
    spec = load_spec(name)
    model = backend.build(spec)
    for weights in (initial_weights(spec), random_weights(spec)):
        backend.set_weights(model, weights)
        back = backend.get_weights(model)
        assert set(back) == set(weights)
        for key, value in weights.items():
            assert back[key].dtype == np.float32 and back[key].flags.c_contiguous
            np.testing.assert_array_equal(back[key], value, err_msg=key)


@pytest.mark.parametrize("name", list_specs())
def test_zoo_forward_matches_numpy_reference(backend: TorchBackend, name: str) -> None:
    check_forward(backend, load_spec(name), n=3, varied=False)


# --------------------------------------------------------------------------- layers

CONVS = [  # kernel, strides; 'same' pads asymmetrically (odd cell at the end) in most of these
    ("4", "2"), ("4", "1"), ("3", "2"), ("[5, 2]", "[2, 3]"),
]


@pytest.mark.parametrize("kernel,strides", CONVS)
@pytest.mark.parametrize("padding", ["same", "valid"])
def test_conv_matches_tf_padding_reference(backend: TorchBackend, kernel: str, strides: str,
                                           padding: str) -> None:
    conv = f"{{type: conv2d, filters: 3, kernel_size: {kernel}, strides: {strides}, " \
           f"padding: {padding}, activation: relu}}"
    spec = make_spec([28, 28, 1], [
        conv, "{type: maxpool2d, pool_size: 2, padding: same}",
        f"{{type: conv2d, filters: 4, kernel_size: {kernel}, strides: {strides}, "
        f"padding: {padding}}}",
        "{type: flatten}", "{type: dense, units: 10, activation: softmax}",
    ])
    check_forward(backend, spec)


def test_even_kernel_stride_2_same_padding_is_asymmetric_somewhere() -> None:
    """The conv test above covers TF's asymmetric 'same' padding (4x4 / 2 on a 7x7 map)."""
    spec = make_spec([28, 28, 1], [
        "{type: conv2d, filters: 2, kernel_size: 4, strides: 2, padding: same}",  # 28 -> 14
        "{type: conv2d, filters: 2, kernel_size: 4, strides: 2, padding: same}",  # 14 -> 7
        "{type: conv2d, filters: 2, kernel_size: 4, strides: 2, padding: same}",  # 7 -> 4
        "{type: flatten}", "{type: dense, units: 10, activation: softmax}",
    ])
    assert [info.padding for info in infer(spec).layers[:3]] == [(1, 1, 1, 1)] * 2 + [(1, 2, 1, 2)]
    check_forward(TorchBackend(), spec)


POOLS = [  # pool, strides -> 'same' padding on 28: (0,1), (0,1), (1,2), (1,1), mixed
    ("3", "2"), ("2", "1"), ("4", "3"), ("3", "3"), ("[3, 2]", "[1, 2]"), ("[2, 4]", "[2, 3]"),
]


@pytest.mark.parametrize("pool,strides", POOLS)
@pytest.mark.parametrize("kind", ["maxpool2d", "avgpool2d"])
@pytest.mark.parametrize("padding", ["same", "valid"])
def test_pools_match_reference_excluding_padding(backend: TorchBackend, pool: str, strides: str,
                                                 kind: str, padding: str) -> None:
    spec = make_spec([28, 28, 1], [
        "{type: conv2d, filters: 3, kernel_size: 3, padding: same}",  # negative values too
        f"{{type: {kind}, pool_size: {pool}, strides: {strides}, padding: {padding}}}",
        "{type: flatten}", "{type: dense, units: 10, activation: softmax}",
    ])
    check_forward(backend, spec)


def test_asymmetric_pool_padding_is_covered() -> None:
    spec = make_spec([28, 28, 1], ["{type: avgpool2d, pool_size: 4, strides: 3, padding: same}",
                                   "{type: flatten}",
                                   "{type: dense, units: 10, activation: softmax}"])
    assert infer(spec).layers[0].padding == (1, 2, 1, 2)


@pytest.mark.parametrize("activation", list(L.ACTIVATIONS))
def test_activations_match_keras_formulas(backend: TorchBackend, activation: str) -> None:
    spec = make_spec([784], [f"{{type: dense, units: 16, activation: {activation}}}",
                             "{type: dense, units: 10, activation: softmax}"])
    check_forward(backend, spec)


def test_batchnorm_and_dropout_layers_in_eval_mode(backend: TorchBackend) -> None:
    """BN on images and on a flattened image (vectors permuted like the next dense's rows)."""
    spec = make_spec([28, 28, 1], [
        "{type: conv2d, filters: 3, kernel_size: 3, strides: 2, padding: same}",
        "{type: batchnorm, momentum: 0.9, epsilon: 0.01}", "{type: dropout, rate: 0.5}",
        "{type: activation, activation: elu}", "{type: flatten}",
        "{type: batchnorm, momentum: 0.99, epsilon: 0.001}", "{type: dropout, rate: 0.3}",
        "{type: dense, units: 12, activation: tanh, use_bias: false}",
        "{type: batchnorm, momentum: 0.99, epsilon: 0.001}",
        "{type: dense, units: 10}", "{type: activation, activation: softmax}",
    ])
    check_forward(backend, spec)


@pytest.mark.parametrize("shape", [[784], [28, 28, 1]])
def test_batchnorm_training_uses_keras_statistics(backend: TorchBackend, shape: list[int]) -> None:
    """Normalise with the biased batch variance; moving stats use the biased one too (Keras)."""
    first = "{type: dense, units: 6}" if len(shape) == 1 else \
        "{type: conv2d, filters: 6, kernel_size: 3, strides: 3}"
    spec = make_spec(shape, [first, "{type: batchnorm, momentum: 0.8, epsilon: 0.01}",
                             "{type: flatten}", "{type: dense, units: 10, activation: softmax}"])
    model = backend.build(spec)
    weights = random_weights(spec)
    backend.set_weights(model, weights)
    x = torch.randn(5, *shape)
    model.net.train()
    pre = model.net.body[0](x.permute(0, 3, 1, 2) if len(shape) == 3 else x).detach()
    out = model.net.body[1](pre).detach().numpy().astype(np.float64)
    pre64 = pre.numpy().astype(np.float64)
    axes = (0,) if len(shape) == 1 else (0, 2, 3)
    view = (1, -1) if len(shape) == 1 else (1, -1, 1, 1)
    mean, var = pre64.mean(axis=axes), pre64.var(axis=axes)  # biased
    expected = ((pre64 - mean.reshape(view)) / np.sqrt(var.reshape(view) + 0.01)
                * weights["1.gamma"].reshape(view) + weights["1.beta"].reshape(view))
    np.testing.assert_allclose(out, expected, atol=1e-5)
    stats = backend.get_weights(model)
    np.testing.assert_allclose(stats["1.moving_mean"], 0.8 * weights["1.moving_mean"] + 0.2 * mean,
                               atol=1e-6)
    np.testing.assert_allclose(stats["1.moving_variance"],
                               0.8 * weights["1.moving_variance"] + 0.2 * var, rtol=1e-5)


def test_batchnorm_single_sample_batch_gives_beta(backend: TorchBackend) -> None:
    spec = make_spec([784], ["{type: dense, units: 6}",
                             "{type: batchnorm, momentum: 0.9, epsilon: 0.001}",
                             "{type: dense, units: 10, activation: softmax}"])
    model = backend.build(spec)
    model.net.train()
    out = model.net.body[1](torch.randn(1, 6))
    np.testing.assert_array_equal(out.detach().numpy()[0], backend.get_weights(model)["1.beta"])


# --------------------------------------------------------------------------- optimizers
# Keras 3 update formulas (keras/src/optimizers/*.py update_step), written out in numpy.
# `rates` (SGD, Adam, AdamW): each step's learning rate, as a schedule gives it.


def _rate(cfg: dict, step: int) -> float:
    return cfg["rates"][step] if "rates" in cfg else cfg["learning_rate"]


def keras_sgd(cfg: dict, w: np.ndarray, grads: list[np.ndarray]) -> np.ndarray:
    m = np.zeros_like(w)
    for step, g in enumerate(grads):
        lr = _rate(cfg, step)
        if cfg["momentum"] != 0:
            m = cfg["momentum"] * m - lr * g
            w = w + (cfg["momentum"] * m - lr * g if cfg["nesterov"] else m)
        else:
            w = w - lr * g
    return w


def keras_adam(cfg: dict, w: np.ndarray, grads: list[np.ndarray]) -> np.ndarray:
    m, v = np.zeros_like(w), np.zeros_like(w)
    b1, b2 = cfg["beta_1"], cfg["beta_2"]
    for t, g in enumerate(grads, start=1):
        lr = _rate(cfg, t - 1)
        # AdamW: decoupled decay first (BaseOptimizer._apply_weight_decay), every variable
        w = w - w * cfg.get("weight_decay", 0.0) * lr
        alpha = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
        m = m + (g - m) * (1 - b1)
        v = v + (g * g - v) * (1 - b2)
        w = w - m * alpha / (np.sqrt(v) + cfg["epsilon"])
    return w


def keras_adadelta(cfg: dict, w: np.ndarray, grads: list[np.ndarray]) -> np.ndarray:
    acc_g, acc_d = np.zeros_like(w), np.zeros_like(w)
    rho, eps = cfg["rho"], cfg["epsilon"]
    for g in grads:
        acc_g = rho * acc_g + (1 - rho) * g * g
        delta = -np.sqrt(acc_d + eps) * g / np.sqrt(acc_g + eps)
        acc_d = rho * acc_d + (1 - rho) * delta * delta
        w = w + cfg["learning_rate"] * delta
    return w


def keras_rmsprop(cfg: dict, w: np.ndarray, grads: list[np.ndarray]) -> np.ndarray:
    v, avg, mom = np.zeros_like(w), np.zeros_like(w), np.zeros_like(w)
    rho, eps = cfg["rho"], cfg["epsilon"]
    for g in grads:
        v = rho * v + (1 - rho) * g * g
        if cfg["centered"]:
            avg = rho * avg + (1 - rho) * g
            denominator = v - avg * avg + eps
        else:
            denominator = v + eps
        increment = cfg["learning_rate"] * g / np.sqrt(denominator)
        if cfg["momentum"] > 0:
            mom = cfg["momentum"] * mom + increment
            w = w - mom
        else:
            w = w - increment
    return w


def keras_adagrad(cfg: dict, w: np.ndarray, grads: list[np.ndarray]) -> np.ndarray:
    acc = np.full_like(w, cfg["initial_accumulator_value"])
    for g in grads:
        acc = acc + g * g
        w = w - cfg["learning_rate"] * g / np.sqrt(acc + cfg["epsilon"])
    return w


def keras_nadam(cfg: dict, w: np.ndarray, grads: list[np.ndarray]) -> np.ndarray:
    m, v, u_product = np.zeros_like(w), np.zeros_like(w), 1.0
    b1, b2 = cfg["beta_1"], cfg["beta_2"]
    for t, g in enumerate(grads, start=1):
        u_t = b1 * (1 - 0.5 * 0.96**t)  # Keras 3: no 0.004 factor in the exponent
        u_t_1 = b1 * (1 - 0.5 * 0.96 ** (t + 1))
        u_product = u_product * u_t  # updated before update_step (_backend_update_step)
        u_product_t_1 = u_product * u_t_1
        m = m + (g - m) * (1 - b1)
        v = v + (g * g - v) * (1 - b2)
        m_hat = u_t_1 * m / (1 - u_product_t_1) + (1 - u_t) * g / (1 - u_product)
        v_hat = v / (1 - b2**t)
        w = w - m_hat * cfg["learning_rate"] / (np.sqrt(v_hat) + cfg["epsilon"])
    return w


REFERENCES = {"sgd": keras_sgd, "adam": keras_adam, "adadelta": keras_adadelta,
              "rmsprop": keras_rmsprop, "adagrad": keras_adagrad, "nadam": keras_nadam,
              "adamw": keras_adam}

# Large epsilons so a misplaced epsilon shows; several variants per optimizer.
OPTIMIZER_CASES = [
    {"name": "sgd", "learning_rate": 0.1, "momentum": 0.0, "nesterov": False},
    {"name": "sgd", "learning_rate": 0.1, "momentum": 0.9, "nesterov": False},
    {"name": "sgd", "learning_rate": 0.1, "momentum": 0.8, "nesterov": True},
    {"name": "sgd", "learning_rate": 0.1, "momentum": 0.0, "nesterov": True},
    {"name": "adam", "learning_rate": 0.01, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-2},
    {"name": "adam", "learning_rate": 0.001, "beta_1": 0.5, "beta_2": 0.9, "epsilon": 1e-7},
    {"name": "adadelta", "learning_rate": 1.0, "rho": 0.95, "epsilon": 1e-3},
    {"name": "rmsprop", "learning_rate": 0.01, "rho": 0.9, "momentum": 0.0, "epsilon": 1e-2,
     "centered": False},
    {"name": "rmsprop", "learning_rate": 0.01, "rho": 0.8, "momentum": 0.9, "epsilon": 1e-3,
     "centered": True},
    {"name": "adagrad", "learning_rate": 0.05, "initial_accumulator_value": 0.1, "epsilon": 1e-2},
    {"name": "adagrad", "learning_rate": 0.05, "initial_accumulator_value": 0.0, "epsilon": 1e-7},
    {"name": "nadam", "learning_rate": 0.01, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-2},
    {"name": "adamw", "learning_rate": 0.01, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-2,
     "weight_decay": 0.5},
]


def test_every_optimizer_has_a_case_and_a_reference() -> None:
    assert {case["name"] for case in OPTIMIZER_CASES} == set(OPTIMIZERS) == set(REFERENCES)


def gradient_sequence(shapes: list[tuple[int, ...]], steps: int) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(7)
    return [[rng.normal(0, 0.1, s) for s in shapes] for _ in range(steps)]


def run_torch(optimizer: torch.optim.Optimizer | None, cfg: dict, start: list[np.ndarray],
              grads: list[list[np.ndarray]]) -> list[np.ndarray]:
    """`cfg`'s optimizer (make_optimizer, or `optimizer` given) over `grads`; with `rates` in
    `cfg`, each step's lr set before it, as the backend does under a schedule."""
    params = [torch.nn.Parameter(torch.from_numpy(w.copy())) for w in start]
    spec = {key: value for key, value in cfg.items() if key != "rates"}
    if optimizer is None:
        opt = make_optimizer(params, TypeAdapter(Optimizer).validate_python(spec),
                             scheduled="rates" in cfg)
    else:
        opt = optimizer(params)
    for index, step in enumerate(grads):
        for p, g in zip(params, step, strict=True):
            p.grad = torch.from_numpy(g.copy())
        if "rates" in cfg:
            for group in opt.param_groups:
                group["lr"] = cfg["rates"][index]
        opt.step()
        opt.zero_grad(set_to_none=True)
    return [p.detach().numpy() for p in params]


def reference(cfg: dict, start: list[np.ndarray], grads: list[list[np.ndarray]]
              ) -> list[np.ndarray]:
    return [REFERENCES[cfg["name"]](cfg, w, [step[i] for step in grads])
            for i, w in enumerate(start)]


@pytest.mark.parametrize("cfg", OPTIMIZER_CASES, ids=lambda c: c["name"])
def test_optimizer_matches_keras_update_formula(cfg: dict) -> None:
    shapes = [(3, 4), (4,)]
    start = [np.random.default_rng(1).normal(0, 1, s) for s in shapes]  # float64: exact maths
    grads = gradient_sequence(shapes, steps=6)
    got, want = run_torch(None, cfg, start, grads), reference(cfg, start, grads)
    moved = max(np.abs(w - s).max() for w, s in zip(want, start, strict=True))
    assert moved > 1e-3
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-10)


TORCH_DEFAULTS = {  # plain torch optimizers: the references must tell them apart from Keras
    "adam": lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.9, 0.999), eps=1e-2),
    "rmsprop": lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9, eps=1e-2),
    "adagrad": lambda p: torch.optim.Adagrad(p, lr=0.05, initial_accumulator_value=0.1, eps=1e-2),
    "nadam": lambda p: torch.optim.NAdam(p, lr=0.01, betas=(0.9, 0.999), eps=1e-2),
}


@pytest.mark.parametrize("name", list(TORCH_DEFAULTS))
def test_reference_rejects_plain_torch_optimizer(name: str) -> None:
    cfg = next(c for c in OPTIMIZER_CASES if c["name"] == name)
    shapes = [(3, 4)]
    start = [np.random.default_rng(1).normal(0, 1, s) for s in shapes]
    grads = gradient_sequence(shapes, steps=6)
    got = run_torch(TORCH_DEFAULTS[name], cfg, start, grads)
    assert not np.allclose(got[0], reference(cfg, start, grads)[0], rtol=1e-4, atol=0)


RATES = [0.1, 0.05, 0.2, 0.01, 0.1, 0.025]  # a learning rate per step, up and down


@pytest.mark.parametrize("cfg", [case for case in OPTIMIZER_CASES
                                 if case["name"] in ("sgd", "adam", "adamw")],
                         ids=lambda c: c["name"])
def test_optimizer_matches_keras_update_formula_under_a_changing_rate(cfg: dict) -> None:
    shapes = [(3, 4), (4,)]
    start = [np.random.default_rng(1).normal(0, 1, s) for s in shapes]
    grads = gradient_sequence(shapes, steps=len(RATES))
    cfg = {**cfg, "rates": RATES}
    for g, w in zip(run_torch(None, cfg, start, grads), reference(cfg, start, grads),
                    strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("nesterov", [False, True])
def test_torch_sgd_with_momentum_is_not_keras_under_a_changing_rate(nesterov: bool) -> None:
    """Negative control: torch.optim.SGD's buffer sums gradients the current lr then scales;
    equal to Keras' with a constant lr only (hence KerasSGD under a schedule)."""
    cfg = {"name": "sgd", "learning_rate": 0.1, "momentum": 0.9, "nesterov": nesterov}
    shapes = [(3, 4)]
    start = [np.random.default_rng(1).normal(0, 1, s) for s in shapes]
    grads = gradient_sequence(shapes, steps=len(RATES))
    plain = run_torch(lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=nesterov),
                      {**cfg, "rates": RATES}, start, grads)
    assert not np.allclose(plain[0], reference({**cfg, "rates": RATES}, start, grads)[0],
                           rtol=1e-4, atol=0)
    constant = run_torch(lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=nesterov),
                         cfg, start, grads)
    np.testing.assert_allclose(constant[0], reference(cfg, start, grads)[0], rtol=1e-12)


def test_adamw_is_not_adam_with_weight_decay() -> None:
    """Negative control: torch.optim.Adam(weight_decay=...) adds the decay to the gradient
    (through the moments); Keras' and torch's AdamW decay the weights apart from it."""
    cfg = next(c for c in OPTIMIZER_CASES if c["name"] == "adamw")
    shapes = [(3, 4)]
    start = [np.random.default_rng(1).normal(0, 1, s) for s in shapes]
    grads = gradient_sequence(shapes, steps=6)
    coupled = run_torch(lambda p: torch.optim.Adam(p, lr=0.01, eps=1e-2, weight_decay=0.5),
                        cfg, start, grads)
    assert not np.allclose(coupled[0], reference(cfg, start, grads)[0], rtol=1e-4, atol=0)


def test_adam_epsilon_schedule_is_saved_in_state_dict() -> None:
    spec = make_spec([784], ["{type: dense, units: 10, activation: softmax}"])
    model = TorchBackend().build(spec)
    model.net(torch.randn(2, 784)).sum().backward()
    model.optimizer.step()
    group = model.optimizer.state_dict()["param_groups"][0]
    assert group["keras_step"] == 1
    assert group["eps"] == pytest.approx(1e-7 / math.sqrt(1 - 0.999))


# --------------------------------------------------------------------------- training


def separable(n: int, shape: list[int], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (10, math.prod(shape)))
    y = rng.integers(0, 10, n)
    x = centres[y] + rng.normal(0, 0.5, (n, centres.shape[1]))
    return x.reshape(n, *shape).astype(np.float32), y.astype(np.int64)


OPTIMIZER_TRAIN = {
    "sgd": "{name: sgd, learning_rate: 0.05, momentum: 0.9, nesterov: true}",
    "adam": ADAM,
    "adadelta": "{name: adadelta, learning_rate: 1.0, rho: 0.95, epsilon: 1.0e-6}",
    "rmsprop": "{name: rmsprop, learning_rate: 0.001, rho: 0.9, momentum: 0.0, epsilon: 1.0e-7, "
               "centered: false}",
    "adagrad": "{name: adagrad, learning_rate: 0.05, initial_accumulator_value: 0.1, "
               "epsilon: 1.0e-7}",
    "nadam": "{name: nadam, learning_rate: 0.002, beta_1: 0.9, beta_2: 0.999, epsilon: 1.0e-7}",
    "adamw": "{name: adamw, learning_rate: 0.01, beta_1: 0.9, beta_2: 0.999, epsilon: 1.0e-7, "
             "weight_decay: 0.004}",
}


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_train_epoch_lowers_the_loss(backend: TorchBackend, name: str) -> None:
    spec = make_spec([784], ["{type: dense, units: 32, activation: relu}",
                             "{type: batchnorm, momentum: 0.9, epsilon: 0.001}",
                             "{type: dropout, rate: 0.2}",
                             "{type: dense, units: 10, activation: softmax}"],
                     OPTIMIZER_TRAIN[name])
    backend.seed(0)
    model = backend.build(spec)
    data = backend.to_native(*separable(600, [784]))
    before = backend.evaluate(model, data, batch_size=128).loss
    order = np.random.default_rng(0).permutation(600)
    results = [backend.train_epoch(model, data, order, batch_size=64) for _ in range(3)]
    after = backend.evaluate(model, data, batch_size=128)
    assert model.steps == 3 * 10  # 600 / 64 -> 9 full batches + 1 partial
    assert after.loss < 0.5 * before and after.accuracy > 0.9
    assert results[-1].loss < results[0].loss and all(r.seconds > 0 for r in results)


def test_image_model_trains_and_evaluates_consistently(backend: TorchBackend,
                                                       tmp_path: Path) -> None:
    spec = make_spec([28, 28, 1], [
        "{type: conv2d, filters: 4, kernel_size: 4, strides: 2, padding: same, activation: relu}",
        "{type: batchnorm, momentum: 0.9, epsilon: 0.001}",
        "{type: maxpool2d, pool_size: 3, strides: 2, padding: same}",
        "{type: avgpool2d, pool_size: 2, strides: 1, padding: same}",
        "{type: dropout, rate: 0.1}", "{type: flatten}",
        "{type: dense, units: 10, activation: softmax}",
    ])
    model = backend.build(spec)
    x, y = separable(256, [28, 28, 1], seed=3)
    data = backend.to_native(x, y)
    first = backend.train_epoch(model, data, np.arange(256), batch_size=50)
    second = backend.train_epoch(model, data, np.arange(256)[::-1].copy(), batch_size=50)
    assert np.isfinite(first.loss) and second.loss < first.loss
    evaluation = backend.evaluate(model, data, batch_size=100)
    probs = backend.predict(model, x, batch_size=100)
    ce = -np.log(probs[np.arange(256), y].astype(np.float64)).mean()
    assert evaluation.loss == pytest.approx(ce, rel=1e-4)
    assert evaluation.accuracy == pytest.approx((probs.argmax(1) == y).mean())
    # the probabilities come from the evaluation's own pass, as predict computes them
    np.testing.assert_array_equal(evaluation.probabilities, probs)
    path = backend.save(model, tmp_path / "run")
    assert path == tmp_path / "run" / "model.pt"
    fresh = build_module(spec)
    fresh.load_state_dict(torch.load(path))
    reloaded = fresh.eval()(torch.from_numpy(x[:5])).detach().numpy()
    np.testing.assert_allclose(reloaded, probs[:5], atol=1e-6)  # batch size changes kernels


# --------------------------------------------------------------------------- backend


def test_registry_and_environment() -> None:
    before = torch.get_num_threads()
    try:
        backend = get_backend("torch", threads=1)
        env = backend.environment()
        assert env["threads"] == env["intra_op_threads"] == torch.get_num_threads() == 1
        # inter-op 1 unless torch's inter-op pool had already started: what runs is recorded
        assert env["inter_op_threads"] == torch.get_num_interop_threads()
        torch.set_num_threads(3)  # behind the backend's back: read back, not echoed
        assert backend.environment()["intra_op_threads"] == 3
    finally:
        torch.set_num_threads(before)  # a process-wide setting; leave it as found
    assert env["framework"] == "torch" and env["compile_mode"] == "eager"
    assert env["torch"] == torch.__version__ and env["device"] == "cpu"


def test_tf32_is_one_switch_for_matmuls_and_convolutions_read_back() -> None:
    try:
        backend = TorchBackend(tf32=True)
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
        assert backend.environment()["tf32"] is True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        assert backend.environment()["tf32"] is False  # read back, not echoed
    finally:
        TorchBackend()  # the default policy: off for both, as every other test expects
    assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32


LAYOUT_CNN = ["{type: conv2d, filters: 6, kernel_size: 3, activation: relu}",
              "{type: batchnorm, momentum: 0.9, epsilon: 0.001}",
              "{type: conv2d, filters: 4, kernel_size: 3, padding: same, activation: relu}",
              "{type: maxpool2d, pool_size: 2}", "{type: flatten}",
              "{type: dense, units: 10, activation: softmax}"]


def _first_conv(model) -> torch.nn.Conv2d:
    return next(m for m in model.net.modules() if isinstance(m, torch.nn.Conv2d))


def _conv_output(model, x: torch.Tensor) -> torch.Tensor:
    """The first convolution's output, caught by a hook of the test's own."""
    seen = []
    handle = _first_conv(model).register_forward_hook(lambda _m, _a, out: seen.append(out))
    try:
        model.net(x)
    finally:
        handle.remove()
    return seen[0]


@pytest.mark.parametrize(("layout", "memory_format"), [("channels_last", torch.channels_last),
                                                      ("nchw", torch.contiguous_format)])
def test_cnn_layout_is_chosen_and_read_back(layout: str, memory_format: torch.memory_format
                                            ) -> None:
    """The NHWC->NCHW permute alone is a channels-last view; the layout option decides."""
    spec = make_spec([28, 28, 1], LAYOUT_CNN)
    backend = TorchBackend(threads=2, layout=layout)
    model = backend.build(spec)
    backend.set_weights(model, random_weights(spec))
    assert model.layout == layout == backend.environment()["layout"]  # known from the start
    x, y = separable(64, [28, 28, 1], seed=1)
    output = _conv_output(model, torch.from_numpy(x))
    assert output.is_contiguous(memory_format=memory_format)
    other = torch.channels_last if layout == "nchw" else torch.contiguous_format
    assert not output.is_contiguous(memory_format=other)
    backend.train_epoch(model, backend.to_native(x, y), np.arange(64), batch_size=16)
    assert model.layout == layout
    kernel = [m for m in model.net.modules() if isinstance(m, torch.nn.Conv2d)][1].weight
    assert kernel.is_contiguous(memory_format=memory_format)  # 6 input channels: unambiguous
    assert not kernel.is_contiguous(memory_format=other)


def test_layouts_compute_the_same_function_and_export_without_layout_ops(
        tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    import onnx

    spec = make_spec([28, 28, 1], LAYOUT_CNN)
    x, _ = separable(32, [28, 28, 1], seed=2)
    probs, ops = {}, {}
    for layout in ("channels_last", "nchw"):
        backend = TorchBackend(threads=2, layout=layout)
        model = backend.build(spec)
        backend.set_weights(model, random_weights(spec))
        probs[layout] = backend.predict(model, x)
        backend.export_onnx(model, tmp_path / f"{layout}.onnx", 18)
        ops[layout] = {n.op_type for n in onnx.load(tmp_path / f"{layout}.onnx").graph.node}
        assert len(model.net.body._forward_pre_hooks) == 1  # layout hooks back after export
    np.testing.assert_allclose(probs["nchw"], probs["channels_last"], atol=1e-5)
    # the layout's strided views are not part of the exported function
    assert ops["nchw"] == ops["channels_last"] and not ops["nchw"] & {"Range", "Gather"}


def test_mlp_has_no_layout() -> None:
    backend = TorchBackend(threads=2)
    model = backend.build(make_spec([784], ["{type: dense, units: 10, activation: softmax}"]))
    assert model.layout is None and not model.hooks and backend.environment()["layout"] is None


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_cuda_without_a_gpu_is_unavailable() -> None:
    with pytest.raises(BackendUnavailable, match="CUDA"):
        TorchBackend(device="cuda")


def test_set_weights_rejects_wrong_keys_and_shapes(backend: TorchBackend) -> None:
    spec = load_spec("mlp5_bn")
    model = backend.build(spec)
    weights = initial_weights(spec)
    with pytest.raises(KeyError, match="missing"):
        backend.set_weights(model, {k: v for k, v in weights.items() if k != "0.bias"})
    with pytest.raises(ValueError, match="0.kernel"):
        backend.set_weights(model, dict(weights, **{"0.kernel": weights["0.kernel"].T}))


def test_build_starts_from_the_spec_initial_weights(backend: TorchBackend) -> None:
    spec = load_spec("mlp5_bn")
    got = backend.get_weights(backend.build(spec))
    for key, value in initial_weights(spec).items():
        np.testing.assert_array_equal(got[key], value)
