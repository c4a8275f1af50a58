"""Layers that join branches of a graph spec: element-wise sum and concatenation."""

from __future__ import annotations

from typing import ClassVar, Literal

from harness.spec.layers.base import Inferred, LayerSpec, Shape, ShapeProblem


class Add(LayerSpec):
    """The element-wise sum of two or more inputs of one shape (a residual connection)."""

    type: Literal["add"]
    arity: ClassVar[tuple[int, int | None]] = (2, None)

    def infer(self, shapes: tuple[Shape, ...], problems: list[tuple[str, str]]) -> Inferred:
        if any(shape != shapes[0] for shape in shapes):
            raise ShapeProblem("inputs", f"add needs inputs of one shape; got "
                                         f"{', '.join(map(str, shapes))}")
        return Inferred(shapes[0])


class Concatenate(LayerSpec):
    """Inputs joined along their last axis (features, or channels of an image); every other
    axis must agree."""

    type: Literal["concatenate"]
    arity: ClassVar[tuple[int, int | None]] = (2, None)

    def infer(self, shapes: tuple[Shape, ...], problems: list[tuple[str, str]]) -> Inferred:
        if any(len(shape) != len(shapes[0]) or shape[:-1] != shapes[0][:-1] for shape in shapes):
            raise ShapeProblem("inputs", f"concatenate needs inputs that differ only in their "
                                         f"last axis; got {', '.join(map(str, shapes))}")
        return Inferred((*shapes[0][:-1], sum(shape[-1] for shape in shapes)))
