"""Ops that join the named inputs of a statement: concat and add."""

from __future__ import annotations

from typing import Literal

from archdsl.ir_types import Frozen, Span
from archdsl.ops.spec import OpSpec, Out, Shape, ShapeError, fmt


class Concat(Frozen):
    """Concatenation of the statement's inputs along channels (the features of vectors)."""

    op: Literal["concat"] = "concat"
    span: Span


class Add(Frozen):
    """Element-wise sum of the statement's inputs."""

    op: Literal["add"] = "add"
    span: Span


def _concat_shape(op: Concat, inputs: list[Shape]) -> Out:
    """Channel concatenation: everything but channels must agree."""
    first = inputs[0]
    for other in inputs[1:]:
        if len(other) != len(first) or other[1:] != first[1:]:
            raise ShapeError(
                "E013",
                f"concat inputs differ beyond channels: {' and '.join(fmt(s) for s in inputs)}",
                "concat joins along channels; spatial sizes must be equal",
            )
    channels = " + ".join(str(s[0]) for s in inputs) + " channels"
    return Out((sum(s[0] for s in inputs), *first[1:]), channels)


def _add_shape(op: Add, inputs: list[Shape]) -> Out:
    """Element-wise sum: all shapes equal."""
    if len(set(inputs)) != 1:
        raise ShapeError(
            "E013",
            f"add inputs have different shapes: {' and '.join(fmt(s) for s in inputs)}",
            "add needs equal shapes; project the shortcut (e.g. a 1x1 conv) to match",
        )
    return Out(inputs[0])


SPECS = (
    OpSpec(
        "concat",
        Concat,
        (),
        "the named inputs joined along the channels (the features of vectors)",
        _concat_shape,
        merge=True,
    ),
    OpSpec(
        "add",
        Add,
        (),
        "the element-wise sum of the named inputs",
        _add_shape,
        merge=True,
    ),
)
