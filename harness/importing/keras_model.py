"""A Keras 3 model file (`.keras`, or a legacy `.h5` Keras 3 loads) read into the spec language.

The file is loaded with `safe_mode=True` (no Lambda code runs) on the Keras backend the
harness would pick: the first installed Keras backend (harness.backends.REGISTRY order) this
process can hold, whose package registers the harness's own Keras layers. Each layer is read
back by its builder entry's inverse (`KerasEntry.read`, harness.backends.keras_common.layers),
its arrays found by the same entry's `variables`, so the canonical layouts are the builder's.
"""

from __future__ import annotations

import importlib
import logging
import re
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from harness.backends import REGISTRY, not_installed
from harness.backends.base import BackendUnavailable
from harness.backends.quiet_output import native_output_to_log
from harness.importing.imported import ImportedModel, UnreadableModel, UnsupportedModel
from harness.importing.keras_training import train_settings
from harness.spec.layers import MODEL_INPUT
from harness.spec.schema import INPUT_SHAPES

SUFFIXES = (".keras", ".h5")


def _keras(path: Path) -> Any:
    """keras, loaded on the first installed Keras backend this process can hold."""
    from harness.backends.isolation import conflict

    for name, info in REGISTRY.items():
        if info.keras_backend is None or not_installed(name) or conflict(name):
            continue
        with native_output_to_log(name):  # the framework's load-time lines off a terminal
            importlib.import_module(info.module)  # selects the Keras backend; registers layers
        import keras

        return keras
    raise BackendUnavailable(f"{path}: reading a Keras model needs Keras with one of its "
                             "backends: pip install -e '.[keras]'")


def _load_error(path: Path, exc: Exception) -> UnreadableModel:
    """One line for why Keras could not load the file."""
    text = str(exc)
    custom = re.search(r"Could not locate (?:class|function) '([^']+)'", text)
    if "Lambda" in text or "lambda" in text and "safe_mode" in text:
        why = ("holds a Lambda layer (arbitrary Python code, refused by safe_mode): the spec "
               "cannot express it; replace it with a layer the spec has")
    elif custom:
        why = (f"uses the custom object {custom.group(1)!r}, unknown here: the spec can import "
               "Keras' own layers (and the harness's) only")
    elif isinstance(exc, zipfile.BadZipFile | EOFError) or "truncated" in text.lower():
        why = "is truncated or not a Keras archive (save it again with model.save)"
    else:
        first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
        why = f"is not a Keras model Keras 3 can load ({first[:200]})"
    return UnreadableModel(path, [why])


def load(path: Path) -> Any:
    """The keras.Model in the file; UnreadableModel with one line when it is none."""
    if not path.is_file():  # before Keras loads: a mistyped path is answered at once
        raise UnreadableModel(path, ["no such file" if not path.exists() else "not a file"])
    if path.suffix.lower() == ".keras" and not zipfile.is_zipfile(path):
        raise UnreadableModel(path, ["is truncated or not a Keras archive (a .keras file is a "
                                     "zip archive: save the model again with model.save)"])
    keras = _keras(path)
    absl = logging.getLogger("absl")  # TensorFlow's "compiled metrics have yet to be built"
    level = absl.level
    try:
        absl.setLevel(logging.ERROR)
        with warnings.catch_warnings():  # e.g. the optimizer's variables it skips
            warnings.simplefilter("ignore")
            model = keras.saving.load_model(path, safe_mode=True)
    except (ValueError, TypeError, OSError, KeyError, AttributeError, IndexError, EOFError,
            zipfile.BadZipFile) as exc:
        raise _load_error(path, exc) from None
    finally:
        absl.setLevel(level)
    if not isinstance(model, keras.Model):
        raise UnreadableModel(path, [f"holds a {type(model).__name__}, not a Keras model"])
    return model


def _entries() -> dict[type, tuple[type, Any]]:
    """Keras class -> (spec class, its builder entry)."""
    from harness.backends.keras_common.layers import ENTRIES

    return {keras_cls: (spec_cls, entry) for spec_cls, entry in ENTRIES.items()
            for keras_cls in entry.keras_classes}


def _graph(keras: Any, model: Any, problems: list[str]) -> list[tuple[Any, list[str]]]:
    """The model's layers in an order each reads earlier ones, each with the names of what it
    reads (MODEL_INPUT: the model's input)."""
    if isinstance(model, keras.Sequential):
        layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
        return [(layer, [layers[i - 1].name if i else MODEL_INPUT])
                for i, layer in enumerate(layers)]
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        problems.append(f"the model has {len(model.inputs)} inputs and {len(model.outputs)} "
                        "outputs: the spec has one input (the image) and one output")
        return []
    graph = []
    for operation in model.operations:
        if isinstance(operation, keras.layers.InputLayer):
            continue
        nodes = [node for node in operation._inbound_nodes if node.operation is operation]
        if len(nodes) != 1:
            problems.append(f"layer {operation.name!r} ({type(operation).__name__}) is called "
                            f"{len(nodes)} times: the spec has no shared layers")
            continue
        sources = [tensor._keras_history.operation for tensor in nodes[0].input_tensors]
        graph.append((operation, [MODEL_INPUT if isinstance(source, keras.layers.InputLayer)
                                  else source.name for source in sources]))
    return _spec_order(graph)


def _spec_order(graph: list[tuple[Any, list[str]]]) -> list[tuple[Any, list[str]]]:
    """A model the harness built names its layers `l<spec index>_<type>`: its spec's order
    (Keras lists a graph's layers in another order of its own, as valid). Another model keeps
    Keras' order."""
    from harness.backends.keras_common.builder import spec_index

    try:
        indices = [spec_index(layer) for layer, _ in graph]
    except ValueError:
        return graph
    if sorted(indices) != list(range(len(graph))):
        return graph
    return [item for _, item in sorted(zip(indices, graph, strict=True), key=lambda p: p[0])]


def _supported(entries: dict[type, tuple[type, Any]]) -> str:
    return ", ".join(sorted({cls.__name__ for cls in entries}))


def _why_not(keras: Any, operation: Any) -> str:
    if isinstance(operation, keras.Model):
        return "a model nested as a layer (build the model from its layers instead)"
    if not isinstance(operation, keras.layers.Layer):
        return "an operation on tensors outside a layer (keras.ops, or `+` on tensors)"
    return "no spec layer"


def _read_layers(keras: Any, model: Any, notes: list[str]) -> tuple[list[dict[str, Any]],
                                                                      list[Any]]:
    """The spec layer mappings (names and inputs where the graph is not a chain) and the Keras
    layers they came from; UnsupportedModel naming every layer the spec cannot express."""
    from harness.backends.keras_common.layers.inverse import NotInSpec

    entries, problems = _entries(), []
    graph = _graph(keras, model, problems)
    layers: list[dict[str, Any]] = []
    for position, (layer, sources) in enumerate(graph):
        found = entries.get(type(layer))
        what = f"layer {layer.name!r} ({type(layer).__name__})"
        if found is None:
            problems.append(f"{what}: {_why_not(keras, layer)}; the spec has "
                            f"{_supported(entries)}")
            continue
        try:
            mapping = found[1].read(layer, notes)
        except NotInSpec as exc:
            problems.append(f"{what}: {exc}")
            continue
        previous = graph[position - 1][0].name if position else MODEL_INPUT
        if sources != [previous]:
            mapping["inputs"] = sources
        mapping["name"] = layer.name
        layers.append(mapping)
    if problems:
        raise UnsupportedModel(Path(model.name), problems)
    named = {source for mapping in layers for source in mapping.get("inputs", ())}
    for mapping in layers:  # a name only where an `inputs` refers to it
        if mapping["name"] not in named:
            del mapping["name"]
    return layers, [layer for layer, _ in graph]


def _weights(keras_layers: list[Any]) -> dict[str, np.ndarray]:
    """The arrays of every layer, canonical names from its builder entry's `variables`."""
    entries, out = _entries(), {}
    for index, layer in enumerate(keras_layers):
        variables = entries[type(layer)][1].variables(layer) if layer.weights else {}
        for name, variable in variables.items():
            out[f"{index}.{name}"] = np.array(variable.numpy(), dtype=np.float32)
    return out


def _input_shape(model: Any, path: Path) -> tuple[int, ...]:
    shape = tuple(model.inputs[0].shape[1:])
    if shape not in INPUT_SHAPES:
        raise UnsupportedModel(path, [f"input shape {list(shape)}: the spec reads the 28x28 "
                                      "MNIST images as [784], [28, 28] or [28, 28, 1]"])
    return shape  # type: ignore[return-value]


def _softmax_output(layers: list[dict[str, Any]], from_logits: bool | None, path: Path,
                    notes: list[str]) -> None:
    """The spec ends in a softmax (its loss is cross-entropy on probabilities): a model whose
    outputs are logits gets one appended; Keras' `from_logits=True` on a softmax output
    (softmax twice) has no spec and is refused."""
    ends_in_softmax = layers[-1].get("activation") == "softmax"
    if ends_in_softmax and from_logits:
        raise UnsupportedModel(path, ["the loss has from_logits=True but the model ends in a "
                                      "softmax (Keras then applies softmax twice); the spec "
                                      "cannot say that: compile with from_logits=False"])
    if ends_in_softmax:
        return
    if from_logits is False:
        raise UnsupportedModel(path, ["the loss takes probabilities (from_logits=False) but "
                                      "the last layer is not a softmax; the spec's model ends "
                                      "in a softmax"])
    layers.append({"type": "activation", "activation": "softmax"})
    notes.append("the model's outputs are logits: a softmax is appended (the same training "
                 "maths as from_logits=True; outputs become probabilities, argmax unchanged)")


def read(path: Path) -> ImportedModel:
    """The model in the file as spec layers, weights and training settings."""
    path = Path(path)
    model = load(path)
    keras = _keras(path)
    notes: list[str] = []
    input_shape = _input_shape(model, path)
    try:
        layers, keras_layers = _read_layers(keras, model, notes)
    except UnsupportedModel as exc:
        raise UnsupportedModel(path, exc.problems) from None
    if not layers:
        raise UnsupportedModel(path, ["the model has no layers"])
    train, from_logits = train_settings(model.get_compile_config(), path, notes)
    _softmax_output(layers, from_logits, path, notes)
    return ImportedModel(source=path, format="keras", input_shape=input_shape, layers=layers,
                         weights=_weights(keras_layers), train=train, notes=notes)


def predict(path: Path, x: np.ndarray) -> np.ndarray:
    """The file's model on `x`, as the imported spec computes it: softmax applied where the
    import appended one (a model ending in logits)."""
    from harness.backends.keras_common.layers.inverse import NotInSpec, activation_word

    model = load(Path(path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = np.asarray(model.predict(x, batch_size=256, verbose=0), dtype=np.float64)
    last = model.layers[-1]
    try:
        word = activation_word(last.get_config().get("activation"))
    except NotInSpec:
        word = None
    if word == "softmax":
        return out.astype(np.float32)
    shifted = np.exp(out - out.max(axis=-1, keepdims=True))
    return (shifted / shifted.sum(axis=-1, keepdims=True)).astype(np.float32)


__all__ = ["SUFFIXES", "load", "predict", "read"]
