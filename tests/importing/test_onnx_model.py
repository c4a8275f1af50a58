"""The ONNX reader: PyTorch models written as a PyTorch user writes them, exported with
torch.onnx.export, read into a spec that the harness's PyTorch backend builds from the imported
weights; its outputs must equal ONNX Runtime's on the original file (the reader's `predict`).
Negative controls break one layout conversion each and must fail; bad files must be refused
with one line."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
from onnx_checks import TOLERANCE, _difference, _samples, _spec  # noqa: E402  (same folder)
from torch import nn  # noqa: E402

from harness.importing import onnx_model  # noqa: E402
from harness.importing.imported import ImportedModel, UnreadableModel, UnsupportedModel  # noqa: E402,I001

Export = Callable[..., Path]  # the `export` fixture


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(784, 64), nn.Linear(64, 32), nn.Linear(32, 10)
        self.drop = nn.Dropout(0.2)

    def forward(self, x: Any) -> Any:
        x = self.drop(torch.relu(self.fc1(x)))
        x = nn.functional.gelu(self.fc2(x))
        return torch.softmax(self.fc3(x), dim=1)


class LeNet(nn.Module):
    """BatchNorm (the exporter folds one after a conv or linear into it, not one after a
    pooling), max pooling, and a Flatten of an NCHW image into a Linear (the trap)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 6, 5, padding=2), nn.BatchNorm2d(6)
        self.bn_pool, self.conv2 = nn.BatchNorm2d(6, eps=1e-3, momentum=0.01), nn.Conv2d(6, 16, 5)
        self.fc1, self.bn2, self.fc2 = nn.Linear(16 * 5 * 5, 84), nn.BatchNorm1d(84), \
            nn.Linear(84, 10)

    def forward(self, x: Any) -> Any:
        x = self.bn_pool(nn.functional.max_pool2d(torch.relu(self.bn1(self.conv1(x))), 2))
        x = nn.functional.avg_pool2d(torch.tanh(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = nn.functional.silu(self.bn2(self.fc1(x)))
        return nn.functional.log_softmax(self.fc2(x), dim=1)


class Residual(nn.Module):
    """A residual block with Add, a depthwise conv, a strided 'same' conv, global pooling;
    it ends in logits."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, padding=1)
        self.a, self.b = nn.Conv2d(8, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1)
        self.dw = nn.Conv2d(8, 16, 3, padding=1, groups=8)  # depth multiplier 2
        self.down = nn.Conv2d(16, 16, 1, stride=2)
        self.head = nn.Linear(16, 10)

    def forward(self, x: Any) -> Any:
        x = torch.relu(self.stem(x))
        x = torch.relu(x + self.b(torch.relu(self.a(x))))
        x = self.down(nn.functional.elu(self.dw(x)))
        return self.head(x.mean(dim=(2, 3)))


class Branches(nn.Module):
    """Two convolutions of the input joined along the channels, global max pooling."""

    def __init__(self) -> None:
        super().__init__()
        self.one, self.three = nn.Conv2d(1, 3, 1), nn.Conv2d(1, 5, 3, padding="same")
        self.fc = nn.Linear(8, 10)

    def forward(self, x: Any) -> Any:
        x = torch.relu(torch.cat([self.one(x), self.three(x)], dim=1))
        return torch.softmax(self.fc(x.amax(dim=(2, 3))), dim=1)


class FlatToImage(nn.Module):
    """A flat (N, 784) input viewed as an image, a 'same' conv with an even kernel."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.fc = nn.Conv2d(1, 4, 4, padding="same"), nn.Linear(4 * 14 * 14, 10)

    def forward(self, x: Any) -> Any:
        x = nn.functional.max_pool2d(torch.sigmoid(self.conv(x.view(-1, 1, 28, 28))), 2)
        return torch.softmax(self.fc(x.flatten(1)), dim=-1)


class RowsAsImage(nn.Module):
    """(N, 28, 28) rows unsqueezed to a one-channel image."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.fc = nn.Conv2d(1, 3, 3, stride=2), nn.Linear(3 * 13 * 13, 10)

    def forward(self, x: Any) -> Any:
        return self.fc(torch.flatten(torch.relu(self.conv(x.unsqueeze(1))), 1))


class RowsLSTM(nn.Module):
    """pytorch/examples' mnist_rnn reads the image's rows as steps; the last step's output."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm, self.fc = nn.LSTM(28, 32, batch_first=True), nn.Linear(32, 10)

    def forward(self, x: Any) -> Any:
        out, _ = self.lstm(x)
        return self.fc(out[:, -1, :])


class RowsGRU(nn.Module):
    """Every step's output into a second GRU; its final state h_n."""

    def __init__(self) -> None:
        super().__init__()
        self.gru1, self.gru2 = nn.GRU(28, 24, batch_first=True), nn.GRU(24, 16, batch_first=True)
        self.fc = nn.Linear(16, 10)

    def forward(self, x: Any) -> Any:
        out, _ = self.gru1(x)
        _, h = self.gru2(out)
        return self.fc(h[-1])


class RowsConv1d(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.fc = nn.Conv1d(28, 16, 3, padding=1), nn.Linear(16, 10)

    def forward(self, x: Any) -> Any:
        x = torch.relu(self.conv(x.transpose(1, 2)))  # (N, rows, 28) -> (N, 28 features, rows)
        return self.fc(x.amax(dim=2))


class Symmetric(nn.Module):
    """A stride-2 3x3 conv with padding=1: symmetric pads, not TensorFlow's 'same'."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.fc = nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.Linear(4 * 14 * 14, 10)

    def forward(self, x: Any) -> Any:
        return self.fc(torch.flatten(self.conv(x), 1))


class Cumsum(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x: Any) -> Any:
        return self.fc(torch.cumsum(x, dim=1))


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Export:
    """`export(Module, shape, batch=None, dynamo=True)`: the file of `_export`, written once
    per module."""
    folder, files = tmp_path_factory.mktemp("onnx"), {}

    def cached(module: type, shape: tuple[int, ...], batch: int | None = None,
               dynamo: bool = True) -> Path:
        key = (module, shape, batch, dynamo)
        if key not in files:
            files[key] = _export(module(), shape, folder / f"{module.__name__}_{batch}_"
                                 f"{dynamo}.onnx", batch, dynamo)
        return files[key]

    return cached


def _export(module: nn.Module, shape: tuple[int, ...], path: Path, batch: int | None = None,
            dynamo: bool = True) -> Path:
    """`module` as torch.onnx.export writes it (opset 18; dynamo, torch 2.13's default, or the
    older TorchScript exporter), with a dynamic batch dimension unless `batch` fixes one."""
    torch.manual_seed(0)
    module.eval()
    with torch.no_grad():  # non-trivial batchnorm statistics
        for sub in module.modules():
            if isinstance(sub, nn.modules.batchnorm._BatchNorm):
                sub.running_mean.uniform_(-0.5, 0.5)
                sub.running_var.uniform_(0.5, 2.0)
                sub.weight.uniform_(0.5, 1.5)
                sub.bias.uniform_(-0.2, 0.2)
    example = (torch.zeros(batch or 2, *shape),)
    if dynamo:
        torch.onnx.export(module, example, str(path), opset_version=18, dynamo=True,
                          input_names=["x"], output_names=["y"],
                          dynamic_shapes=None if batch else ({0: torch.export.Dim("batch")},))
    else:
        torch.onnx.export(module, example, str(path), opset_version=18, dynamo=False,
                          input_names=["x"], output_names=["y"],
                          dynamic_axes=None if batch else {"x": {0: "batch"}, "y": {0: "batch"}})
    return path


@pytest.mark.parametrize("module, shape, types", [
    (MLP, (784,), ["dense", "dense", "dense"]),
    # torch's exporter folds an eval-mode batchnorm into the conv or linear before it
    (LeNet, (1, 28, 28), ["conv2d", "maxpool2d", "batchnorm", "conv2d", "avgpool2d",
                          "flatten", "dense", "dense"]),
    (Residual, (1, 28, 28), ["conv2d", "conv2d", "conv2d", "add", "activation",
                             "depthwise_conv2d", "conv2d", "global_avgpool2d", "dense"]),
    (Branches, (1, 28, 28), ["conv2d", "conv2d", "concatenate", "activation",
                             "global_maxpool2d", "dense"]),
    (FlatToImage, (784,), ["reshape", "conv2d", "maxpool2d", "flatten", "dense"]),
    (RowsAsImage, (28, 28), ["reshape", "conv2d", "flatten", "dense"]),
    (RowsLSTM, (28, 28), ["lstm", "dense"]),
    (RowsGRU, (28, 28), ["gru", "gru", "dense"]),
    (RowsConv1d, (28, 28), ["conv1d", "global_maxpool1d", "dense"]),
])
def test_pytorch_models_import_exactly(torch_backend: Any, export: Export, module: type,
                                       shape: tuple[int, ...], types: list[str]) -> None:
    path = export(module, shape)
    imported = onnx_model.read(path)
    assert [layer["type"] for layer in imported.layers] == types
    assert imported.layers[-1]["activation"] == "softmax"
    assert imported.input_shape == {(784,): (784,), (28, 28): (28, 28)}.get(shape, (28, 28, 1))
    assert _difference(torch_backend, path, imported) <= TOLERANCE


@pytest.mark.parametrize("module, shape", [(LeNet, (1, 28, 28)), (RowsLSTM, (28, 28))])
def test_files_with_a_fixed_batch_size(torch_backend: Any, export: Export, module: type,
                                       shape: tuple[int, ...]) -> None:
    """An export without a dynamic batch (batch 1 here): `predict` feeds it one at a time."""
    path = export(module, shape, batch=1)
    assert _difference(torch_backend, path, onnx_model.read(path)) <= TOLERANCE


@pytest.mark.parametrize("module, shape, types", [
    # the TorchScript exporter keeps a batchnorm after a Linear
    (LeNet, (1, 28, 28), ["conv2d", "maxpool2d", "batchnorm", "conv2d", "avgpool2d", "flatten",
                          "dense", "batchnorm", "activation", "dense"]),
    (Residual, (1, 28, 28), ["conv2d", "conv2d", "conv2d", "add", "activation",
                             "depthwise_conv2d", "conv2d", "global_avgpool2d", "dense"]),
    (RowsLSTM, (28, 28), ["lstm", "dense"]),
])
def test_the_torchscript_exporter(torch_backend: Any, export: Export, module: type,
                                  shape: tuple[int, ...], types: list[str]) -> None:
    path = export(module, shape, dynamo=False)
    imported = onnx_model.read(path)
    assert [layer["type"] for layer in imported.layers] == types
    assert _difference(torch_backend, path, imported) <= TOLERANCE


def test_activations_fold_and_notes(export: Export) -> None:
    imported = onnx_model.read(export(MLP, (784,)))
    assert [layer["activation"] for layer in imported.layers] == ["relu", "gelu", "softmax"]
    assert any("Dropout" in note for note in imported.notes)  # the dropout note
    lenet = onnx_model.read(export(LeNet, (1, 28, 28)))
    assert lenet.layers[6]["activation"] == "swish"  # x * sigmoid(x), the batchnorm folded
    assert any("LogSoftmax" in note for note in lenet.notes)
    assert lenet.weights["0.kernel"].shape == (5, 5, 1, 6)  # HWIO
    assert lenet.layers[2] == {"type": "batchnorm", "momentum": 0.99, "epsilon": 0.001}
    residual = onnx_model.read(export(Residual, (1, 28, 28)))
    assert residual.layers[5]["depth_multiplier"] == 2
    assert residual.weights["5.kernel"].shape == (3, 3, 8, 2)
    assert residual.layers[3]["inputs"] == [residual.layers[0]["name"],
                                            residual.layers[2]["name"]]
    assert any("logits" in note for note in residual.notes)


def _broken(imported: ImportedModel, key: str, change: Any) -> ImportedModel:
    return dataclasses.replace(imported, weights={**imported.weights,
                                                  key: change(imported.weights[key])})


def test_negative_controls_fail(torch_backend: Any, export: Export) -> None:
    """Each layout conversion, undone, gives other outputs: the exact match is no accident."""
    path = export(LeNet, (1, 28, 28))
    imported = onnx_model.read(path)
    assert _difference(torch_backend, path, imported) <= TOLERANCE
    # the dense after the NCHW flatten without its row permutation: rows back in (C, H, W)
    hwc_to_chw = np.arange(400).reshape(5, 5, 16).transpose(2, 0, 1).reshape(-1)
    unpermuted = _broken(imported, "6.kernel", lambda k: k[hwc_to_chw])
    assert _difference(torch_backend, path, unpermuted) > 1e-3
    # a conv kernel OIHW reinterpreted instead of transposed to HWIO
    raw = _broken(imported, "3.kernel", lambda k: k.transpose(3, 2, 0, 1).reshape(k.shape))
    assert _difference(torch_backend, path, raw) > 1e-3


def test_symmetric_pads_are_not_same(export: Export) -> None:
    path = export(Symmetric, (1, 28, 28))
    with pytest.raises(UnsupportedModel, match=r"pads \[1, 1, 1, 1\].*'same' here \[0, 0, 1, 1\]"):
        onnx_model.read(path)


def test_unsupported_operator_names_the_node(export: Export) -> None:
    path = export(Cumsum, (784,))
    with pytest.raises(UnsupportedModel) as error:
        onnx_model.read(path)
    assert len(error.value.problems) == 1
    assert "(CumSum): the spec has no layer for CumSum" in error.value.problems[0]


def test_unreadable_files(tmp_path: Path, export: Export) -> None:
    path = export(MLP, (784,))
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(path.read_bytes()[:5000])
    text = tmp_path / "notes.onnx"
    text.write_text("this is not a model\n")
    for bad in (truncated, text):
        with pytest.raises(UnreadableModel) as error:
            onnx_model.read(bad)
        assert len(str(error.value).splitlines()) == 1


def test_symmetric_pads_read_as_same_would_differ(torch_backend: Any, export: Export,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The refusal above is needed: the same file read with its pads taken for 'same'
    computes another function (TensorFlow pads 0 above, 1 below here)."""
    from harness.importing import onnx_ops

    path = export(Symmetric, (1, 28, 28))
    monkeypatch.setattr(onnx_ops, "_padding", lambda *args: "same")
    assert _difference(torch_backend, path, onnx_model.read(path)) > 1e-3


def test_lstm_gate_order_matters(torch_backend: Any, export: Export) -> None:
    path = export(RowsLSTM, (28, 28))
    imported = onnx_model.read(path)
    assert _difference(torch_backend, path, imported) <= TOLERANCE
    units = imported.layers[0]["units"]

    def onnx_order(kernel: np.ndarray) -> np.ndarray:  # Keras (i, f, c, o) back to (i, o, f, c)
        return np.concatenate([np.split(kernel, 4, axis=-1)[i] for i in (0, 3, 1, 2)], axis=-1)

    assert imported.weights["0.kernel"].shape == (28, 4 * units)
    wrong = _broken(_broken(imported, "0.kernel", onnx_order), "0.recurrent_kernel", onnx_order)
    assert _difference(torch_backend, path, wrong) > 1e-3


class Upsample(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.fc = nn.Conv2d(1, 2, 3, stride=2), nn.Linear(2 * 26 * 26, 10)

    def forward(self, x: Any) -> Any:
        x = nn.functional.interpolate(self.conv(x), scale_factor=2.0, mode="nearest")
        return self.fc(torch.flatten(x, 1))


def test_resize_is_unsupported(export: Export) -> None:
    path = export(Upsample, (1, 28, 28))
    with pytest.raises(UnsupportedModel, match=r"\(Resize\): the spec has no layer for Resize"):
        onnx_model.read(path)


def _zoo_round_trip(backend: Any, name: str, folder: Path) -> tuple[list[str], list[str], float]:
    """Export zoo spec `name` from `backend` (random initial weights) and read it back: the
    original's and the import's layer labels, and the largest difference of their outputs."""
    from harness.spec.initializers import initial_weights
    from harness.spec.loader import load_spec

    spec = load_spec(name)
    model = backend.build(spec)
    backend.set_weights(model, initial_weights(spec))
    path = folder / f"{name}.onnx"
    backend.export_onnx(model, path, 18)
    imported = onnx_model.read(path)
    x = _samples(spec.input.shape)
    difference = float(np.abs(backend.predict(model, x) - onnx_model.predict(path, x)).max())
    return ([layer.describe() for layer in spec.layers if layer.type != "dropout"],
            [layer.describe() for layer in _spec(imported).layers], difference)


@pytest.mark.parametrize("name", ["mlp512_128_relu_do1_adam", "cnn3_k3", "lstm_rows"])
def test_zoo_specs_through_the_pytorch_exporter(torch_backend: Any, tmp_path: Path,
                                                name: str) -> None:
    """The harness's PyTorch backend exports NHWC input, a Transpose, then NCHW operators (an
    image's flatten permuted): the import gives the original layers, dropout left out."""
    original, imported, difference = _zoo_round_trip(torch_backend, name, tmp_path)
    assert imported == original
    assert difference <= TOLERANCE


@pytest.mark.slow
@pytest.mark.parametrize("name", ["cnn3_k3", "lstm_rows", "mlp2_bn"])
def test_zoo_specs_through_tf2onnx(backend_call: Any, tmp_path: Path, name: str) -> None:
    """Keras' exports (tf2onnx: channels-last, a one-channel image's transpose as a Reshape,
    MatMul + Add, the LSTM's gates, a batchnorm folded into a Mul) read back alike."""
    original, imported, difference = backend_call("keras", _keras_round_trip, name, tmp_path)
    assert imported == original
    assert difference <= TOLERANCE


def _keras_round_trip(name: str, folder: Path) -> tuple[list[str], list[str], float]:
    from harness.backends import get_backend

    return _zoo_round_trip(get_backend("keras"), name, folder)
