"""Ops that change a tensor's layout or size without weights: flatten, resize, and reshape and
permute, which act on the per-example tensor in the portable (PyTorch) order: a map C, H, W,
tokens L, D."""

from __future__ import annotations

import math
from typing import Literal

from archdsl.ir_types import Frozen, Pair, Span
from archdsl.ops.spec import (
    LAYOUTS,
    WRITTEN,
    ArgumentError,
    OpSpec,
    Out,
    Shape,
    ShapeError,
    fmt,
    layout,
    need,
    need_one_of,
)
from archdsl.params import sig


class Flatten(Frozen):
    """Flatten C x H x W to C*H*W features, in C, H, W order."""

    op: Literal["flatten"] = "flatten"
    span: Span


class Resize(Frozen):
    """Spatial resize with half-pixel centres and no antialiasing."""

    op: Literal["resize"] = "resize"
    span: Span
    size: Pair
    mode: Literal["bilinear", "nearest"] = "bilinear"


class Reshape(Frozen):
    """The per-example tensor as d1 [x d2 [x d3]] in row-major order (-1: inferred)."""

    op: Literal["reshape"] = "reshape"
    span: Span
    d1: int
    d2: int | None = None
    d3: int | None = None

    @property
    def dims(self) -> tuple[int, ...]:
        """The dims as written (one may be -1)."""
        return tuple(d for d in (self.d1, self.d2, self.d3) if d is not None)


class Permute(Frozen):
    """The per-example axes reordered: output axis i is input axis (a, b[, c])[i]."""

    op: Literal["permute"] = "permute"
    span: Span
    a: int
    b: int
    c: int | None = None

    @property
    def axes(self) -> tuple[int, ...]:
        """The permutation, one entry per axis."""
        return tuple(x for x in (self.a, self.b, self.c) if x is not None)


RESHAPE_DIMS = ("d1", "d2", "d3")
PERMUTE_AXES = ("a", "b", "c")


def _written(values: dict, names: tuple[str, ...]) -> list[tuple[str, int]]:
    """(name, value) of the arguments given, in order; E004 at one given after a missing one."""
    given = [(n, values[n]) for n in names if values.get(n) is not None]
    if [n for n, _ in given] != list(names[: len(given)]):
        missing = next(n for n in names if values.get(n) is None)
        later = next(n for n, _ in given if names.index(n) > names.index(missing))
        raise ArgumentError("E004", later, f"`{later}` is given without `{missing}`")
    return given


def _reshape_arguments(values: dict) -> dict:
    """Each dim positive or -1, and at most one -1."""
    inferred = None  # the argument written -1
    for name, dim in _written(values, RESHAPE_DIMS):
        if dim == 0 or dim < -1:
            raise ArgumentError(
                "E004",
                name,
                f"`{name}` of `reshape` is {dim}: a dim is positive, or -1 to infer it",
            )
        if dim == -1 and inferred:
            raise ArgumentError(
                "E004",
                name,
                f"`reshape`: `{inferred}` and `{name}` are both -1; at most one dim is inferred",
                "give every dim but one",
            )
        inferred = name if dim == -1 else inferred
    return values


def _permute_arguments(values: dict) -> dict:
    """The axes are 0 .. n-1, each once."""
    given = _written(values, PERMUTE_AXES)
    rank, seen = len(given), set()
    for name, axis in given:
        if not 0 <= axis < rank or axis in seen:
            axes = ", ".join(str(v) for _, v in given)
            raise ArgumentError(
                "E004",
                name,
                f"`permute({axes})` is not a permutation of the axes 0 to {rank - 1}",
                f"write each of {', '.join(map(str, range(rank)))} once, e.g. "
                f"`permute({', '.join(map(str, reversed(range(rank))))})`",
            )
        seen.add(axis)
    return values


def _reshape_shape(op: Reshape, inputs: list[Shape]) -> Out:
    """The given dims, the element count kept (a -1 inferred from it)."""
    (shape,) = inputs
    need_one_of(shape, ("map", "tokens", "vector"), "reshape")
    count, dims = math.prod(shape), op.dims
    written = f"reshape({', '.join(map(str, dims))})"
    known = math.prod(d for d in dims if d != -1)
    if -1 not in dims:
        if known != count:
            raise ShapeError(
                "E013",
                f"{written} holds {known} elements, its input {fmt(shape)} has {count}",
                f"the dims' product must be {count} (write one dim as -1 to infer it)",
            )
        return Out(dims, f"{count} elements as {fmt(dims)}")
    if count % known:
        raise ShapeError(
            "E004",
            f"{written}: the -1 cannot be inferred, {known} does not divide the "
            f"{count} elements of {fmt(shape)}",
            "the other dims' product must divide the element count",
        )
    dims = tuple(count // known if d == -1 else d for d in dims)
    return Out(dims, f"{count} elements as {fmt(dims)} (-1 = {count // known})")


def _permute_shape(op: Permute, inputs: list[Shape]) -> Out:
    """The input's axes in the order `axes`; one axis per input axis."""
    (shape,) = inputs
    need_one_of(shape, ("map", "tokens"), "permute")
    axes = op.axes
    if len(axes) != len(shape):
        raise ShapeError(
            "E004",
            f"permute({', '.join(map(str, axes))}) reorders {len(axes)} axes, its input "
            f"{fmt(shape)} ({WRITTEN[layout(shape)]}) has {len(shape)}",
            f"give one axis per input axis, or {WRITTEN[LAYOUTS[len(axes)]]} as its input",
        )
    out = tuple(shape[a] for a in axes)
    return Out(out, f"axes ({', '.join(map(str, axes))}): {fmt(shape)} -> {fmt(out)}")


def _flatten_shape(op: Flatten, inputs: list[Shape]) -> Out:
    """C x H x W -> C*H*W (a vector stays as it is)."""
    (shape,) = inputs
    n = math.prod(shape)
    return Out((n,), " * ".join(map(str, shape)) + f" = {n}")


def _resize_shape(op: Resize, inputs: list[Shape]) -> Out:
    """A map resized to a fixed H x W."""
    (shape,) = inputs
    need(shape, "map", "resize")
    size = f"{op.size[0]}x{op.size[1]}"
    return Out((shape[0], *op.size), f"{op.mode} {shape[1]}x{shape[2]} -> {size}")


SPECS = (
    OpSpec(
        "flatten",
        Flatten,
        (),
        "a C x H x W map to C*H*W features in C, H, W order",
        _flatten_shape,
        feature_wise=True,
    ),
    OpSpec(
        "resize",
        Resize,
        sig("size:pair!", "mode:choice:bilinear|nearest"),
        "resize a map to H x W: half-pixel centres, no antialiasing",
        _resize_shape,
    ),
    OpSpec(
        "reshape",
        Reshape,
        sig("d1:int!", "d2:int", "d3:int"),
        "the per-example tensor as d1 [x d2 [x d3]] in PyTorch's row-major order (-1: inferred)",
        _reshape_shape,
        prepare=_reshape_arguments,
    ),
    OpSpec(
        "permute",
        Permute,
        sig("a:int!", "b:int!", "c:int"),
        "reorders the axes of a map (C, H, W) or tokens (L, D): output axis i is input axis a, b, c",
        _permute_shape,
        prepare=_permute_arguments,
    ),
)
