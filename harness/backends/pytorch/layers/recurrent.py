"""PyTorch entries for the recurrent layers, each computing exactly Keras' function.

LSTM: nn.LSTM. Its gates are in Keras' order already (Keras' (i, f, c, o) is torch's
(i, f, g, o): c and g are both the cell candidate), so kernels are only transposed. Torch adds
two biases (b_ih + b_hh) where Keras has one: b_ih holds Keras' bias, b_hh stays zero and is
never trained (requires_grad off), so the function, the gradients and the optimizer's steps are
Keras' (a trainable b_hh would receive the same gradient as b_ih and move twice as fast).

GRU with reset_after (PyTorch's only GRU): torch.gru, nn.GRU's own kernel, called with our
parameters so that Keras' one (2, 3 * units) bias array is one tensor. Torch orders the gates
(r, z, n) where Keras has (z, r, h): the first two blocks are swapped in every array.

GRU without reset_after (the reset gate multiplies the state before the recurrent product):
no torch kernel computes it; a small cell looped over the steps, in Keras' own layout.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from harness.backends.pytorch.layers.base import BuildContext, TorchLayer, TorchWeight
from harness.spec import layers as L
from harness.spec.shapes import LayerInfo


def _last_or_all(out: torch.Tensor, return_sequences: bool) -> torch.Tensor:
    return out if return_sequences else out[:, -1]


class KerasLSTM(nn.Module):
    """(N, steps, features) -> the last step's output (N, units), or every step's."""

    def __init__(self, features: int, units: int, use_bias: bool,
                 return_sequences: bool) -> None:
        super().__init__()
        self.rnn = nn.LSTM(features, units, batch_first=True, bias=use_bias)
        self.return_sequences = return_sequences
        if use_bias:  # Keras has one bias: torch's recurrent one stays zero, untrained
            with torch.no_grad():
                self.rnn.bias_hh_l0.zero_()
            self.rnn.bias_hh_l0.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return _last_or_all(out, self.return_sequences)


class KerasGRU(nn.Module):
    """Keras' GRU with reset_after through torch.gru: parameters in torch's (r, z, n) order,
    `bias` row 0 the input bias, row 1 the recurrent bias (Keras' layout of the two)."""

    def __init__(self, features: int, units: int, use_bias: bool,
                 return_sequences: bool) -> None:
        super().__init__()
        self.units, self.return_sequences = units, return_sequences
        self.weight_ih = nn.Parameter(torch.zeros(3 * units, features))
        self.weight_hh = nn.Parameter(torch.zeros(3 * units, units))
        self.bias = nn.Parameter(torch.zeros(2, 3 * units)) if use_bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h0 = x.new_zeros(1, x.shape[0], self.units)
        params = [self.weight_ih, self.weight_hh]
        if self.bias is not None:
            params += [self.bias[0], self.bias[1]]
        # (input, hx, params, has_biases, num_layers, dropout, train, bidirectional,
        # batch_first): nn.GRU's own call
        out, _ = torch.gru(x, h0, params, self.bias is not None, 1, 0.0, self.training,
                           False, True)
        return _last_or_all(out, self.return_sequences)


class KerasGRUResetBefore(nn.Module):
    """Keras' GRU with reset_after=False, step by step in Keras' layout and gate order:
    z, r = sigmoid(x Wz,r + b + h Uz,r); hh = tanh(x Wh + b + (r * h) Uh);
    h = z * h + (1 - z) * hh."""

    def __init__(self, features: int, units: int, steps: int, use_bias: bool,
                 return_sequences: bool) -> None:
        super().__init__()
        self.units, self.steps, self.return_sequences = units, steps, return_sequences
        self.kernel = nn.Parameter(torch.zeros(features, 3 * units))
        self.recurrent_kernel = nn.Parameter(torch.zeros(units, 3 * units))
        self.bias = nn.Parameter(torch.zeros(3 * units)) if use_bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = self.units
        inputs = x @ self.kernel  # every step's input projection at once
        if self.bias is not None:
            inputs = inputs + self.bias
        gates_kernel, candidate_kernel = self.recurrent_kernel[:, :2 * u], \
            self.recurrent_kernel[:, 2 * u:]
        h = x.new_zeros(x.shape[0], u)
        outputs = []
        for t in range(self.steps):
            step = inputs[:, t]
            zr = torch.sigmoid(step[:, :2 * u] + h @ gates_kernel)
            z, r = zr[:, :u], zr[:, u:]
            candidate = torch.tanh(step[:, 2 * u:] + (r * h) @ candidate_kernel)
            h = z * h + (1 - z) * candidate
            outputs.append(h)
        return torch.stack(outputs, dim=1) if self.return_sequences else h


def swap_zr(a: np.ndarray) -> np.ndarray:
    """Keras' (z, r, h) gate blocks along the last axis <-> torch's (r, z, n); its own inverse."""
    z, r, h = np.split(a, 3, axis=-1)
    return np.concatenate([r, z, h], axis=-1)


def _transposed(a: np.ndarray) -> np.ndarray:
    return a.T


def _lstm(info: LayerInfo, ctx: BuildContext) -> TorchLayer:
    layer: L.LSTM = info.layer  # type: ignore[assignment]
    steps, features = info.input_shape
    module = KerasLSTM(features, layer.units, layer.use_bias, layer.return_sequences)
    weights = [TorchWeight("kernel", "lstm", "rnn.weight_ih_l0", _transposed, _transposed),
               TorchWeight("recurrent_kernel", "lstm", "rnn.weight_hh_l0", _transposed,
                           _transposed)]
    if layer.use_bias:
        weights.append(TorchWeight("bias", "lstm", "rnn.bias_ih_l0"))
    return TorchLayer([("lstm", module)], tuple(weights))


def _gru(info: LayerInfo, ctx: BuildContext) -> TorchLayer:
    layer: L.GRU = info.layer  # type: ignore[assignment]
    steps, features = info.input_shape
    if not layer.reset_after:
        module: nn.Module = KerasGRUResetBefore(features, layer.units, steps, layer.use_bias,
                                                layer.return_sequences)
        names = ("kernel", "recurrent_kernel", "bias")[:3 if layer.use_bias else 2]
        return TorchLayer([("gru", module)],
                          tuple(TorchWeight(name, "gru", name) for name in names))
    module = KerasGRU(features, layer.units, layer.use_bias, layer.return_sequences)
    to_torch, to_keras = (lambda a: swap_zr(a).T), (lambda w: swap_zr(w.T))
    weights = [TorchWeight("kernel", "gru", "weight_ih", to_torch, to_keras),
               TorchWeight("recurrent_kernel", "gru", "weight_hh", to_torch, to_keras)]
    if layer.use_bias:
        weights.append(TorchWeight("bias", "gru", "bias", swap_zr, swap_zr))
    return TorchLayer([("gru", module)], tuple(weights))


BUILDERS = {L.LSTM: _lstm, L.GRU: _gru}
