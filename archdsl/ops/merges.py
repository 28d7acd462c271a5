"""Ops that join the named inputs of a statement: concat, add and mul."""

from __future__ import annotations

from typing import Literal

from archdsl.ir_types import Frozen, Span
from archdsl.ops.spec import OpSpec, Out, Shape, ShapeError, fmt, need_one_of


class Concat(Frozen):
    """Concatenation of the statement's inputs along channels (the features of vectors)."""

    op: Literal["concat"] = "concat"
    span: Span


class Add(Frozen):
    """Element-wise sum of the statement's inputs, broadcasting sizes of 1."""

    op: Literal["add"] = "add"
    span: Span


class Mul(Frozen):
    """Element-wise product of the statement's inputs, broadcasting sizes of 1."""

    op: Literal["mul"] = "mul"
    span: Span


def _concat_shape(op: Concat, inputs: list[Shape]) -> Out:
    """Channel concatenation: everything but channels must agree."""
    for shape in inputs:
        need_one_of(shape, ("map", "vector"), "concat")
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


def broadcast(inputs: list[Shape]) -> Shape | None:
    """The shape every input broadcasts to (NumPy's rule over same-rank shapes: a size of 1
    stretches to the others'), or None when two sizes differ and neither is 1 or ranks differ."""
    if len({len(s) for s in inputs}) != 1:
        return None
    out = []
    for sizes in zip(*inputs, strict=True):
        wider = set(sizes) - {1}
        if len(wider) > 1:
            return None
        out.append(wider.pop() if wider else 1)
    return tuple(out)


def _is_gate(shape: Shape) -> bool:
    """A C x 1 x 1 map: what squeeze-and-excitation multiplies a map by."""
    return len(shape) == 3 and shape[1:] == (1, 1)


def _elementwise_shape(op: Add | Mul, inputs: list[Shape]) -> Out:
    """Equal shapes, or shapes that broadcast (a size of 1 stretches); maps and vectors do
    not mix."""
    out = broadcast(inputs)
    if out is not None:
        stretched = out != inputs[0] or len(set(inputs)) > 1
        return Out(out, "broadcast to " + fmt(out) if stretched else "")
    shown = " and ".join(fmt(s) for s in inputs)
    raise ShapeError(
        "E013", f"{op.op} inputs do not broadcast: {shown}", _mismatch_hint(op, inputs)
    )


def _mismatch_hint(op: Add | Mul, inputs: list[Shape]) -> str:
    """How to make the inputs of add/mul fit: a gate, a projection, or a layout change."""
    rule = "sizes must be equal or 1 (C, H, W compared one by one)"
    if len({len(s) for s in inputs}) != 1:
        return f"{rule}; maps and vectors do not mix: `flatten` the map or keep both maps"
    maps = [s for s in inputs if len(s) == 3 and s[1:] != (1, 1)]
    misfits = [s for s in inputs if _is_gate(s) and maps and s[0] not in (1, maps[0][0])]
    if misfits and len(set(maps)) == 1:  # the maps agree: a gate of other channels is the culprit
        return (
            f"{rule}; to scale a {fmt(maps[0])} map by a C x 1 x 1 gate use "
            f"`mul(map, gate)` with a gate of {maps[0][0]} channels (it has {misfits[0][0]})"
        )
    return f"{rule}; project the shortcut (e.g. a 1x1 conv) to match"


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
        "the element-wise sum of the named inputs (sizes of 1 broadcast)",
        _elementwise_shape,
        merge=True,
    ),
    OpSpec(
        "mul",
        Mul,
        (),
        "the element-wise product of the named inputs (sizes of 1 broadcast)",
        _elementwise_shape,
        merge=True,
    ),
)
