"""Ops that change a tensor's layout or size without weights: flatten and resize."""

from __future__ import annotations

import math
from typing import Literal

from archdsl.ir_types import Frozen, Pair, Span
from archdsl.ops.spec import OpSpec, Out, Shape, need
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
)
