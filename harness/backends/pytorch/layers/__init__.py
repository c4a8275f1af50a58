"""The PyTorch builder entry of every spec layer type: one registry, one dict per family.

A new layer type adds one entry to its family's BUILDERS (or a new family module and one line
here); `harness.backends.pytorch.builder` needs no change.
"""

from __future__ import annotations

from harness.backends.pytorch.layers import (
    attention,
    conv,
    core,
    merge,
    pooling,
    recurrent,
    shaping,
)
from harness.backends.pytorch.layers.base import (
    BuildContext,
    Builder,
    TorchLayer,
    TorchWeight,
)
from harness.backends.pytorch.layers.core import ACTIVATIONS

BUILDERS: dict[type, Builder] = {
    **core.BUILDERS,
    **conv.BUILDERS,
    **pooling.BUILDERS,
    **merge.BUILDERS,
    **attention.BUILDERS,
    **shaping.BUILDERS,
    **recurrent.BUILDERS,
}

__all__ = ["ACTIVATIONS", "BUILDERS", "BuildContext", "Builder", "TorchLayer", "TorchWeight"]
