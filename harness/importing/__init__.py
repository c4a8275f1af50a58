"""`harness import`: a trained model file (Keras, ONNX) read into a spec and its weights.

Each file format is one reader module with `read(path) -> ImportedModel` and
`predict(path, x)` (harness.importing.imported); `reader_for` picks it by the file's suffix,
importing it only then (a Keras file loads no ONNX, an ONNX file no Keras).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from harness.importing.imported import UnreadableModel

# file suffix -> the reader module
READERS = {".keras": "harness.importing.keras_model", ".h5": "harness.importing.keras_model",
           ".onnx": "harness.importing.onnx_model"}


def reader_for(path: Path) -> ModuleType:
    """The reader module of the file's format; UnreadableModel for a suffix none reads."""
    module = READERS.get(Path(path).suffix.lower())
    if module is None:
        raise UnreadableModel(Path(path), [f"a {Path(path).suffix or 'suffix-less'} file: "
                                           f"harness import reads {', '.join(READERS)} files"])
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:  # a missing framework or a bug inside the reader: not this
            raise
        raise UnreadableModel(Path(path), [f"this harness has no {Path(path).suffix} reader "
                                           f"({module} is not installed)"]) from None
