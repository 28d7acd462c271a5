"""Ops that map a vector through a weight matrix: dense (fully connected)."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import PositiveInt

from archdsl.ir_types import Frozen, Init, Span
from archdsl.ops.spec import OpSpec, Out, Shape, ShapeError, Tensor, fmt, layout
from archdsl.params import sig


class Dense(Frozen):
    """Fully connected layer."""

    op: Literal["dense"] = "dense"
    span: Span
    units: PositiveInt
    bias: bool = True
    weight_init: Init
    bias_init: Init


def _dense_shape(op: Dense, inputs: list[Shape]) -> Out:
    """Dense layers need a flat input (E012 says where to put `flatten` and what it gives), or
    tokens, each of whose D features it maps to `units` (the same weights for every token)."""
    (shape,) = inputs
    if layout(shape) == "tokens":
        return Out((shape[0], op.units), f"{shape[1]} -> {op.units} per token")
    if len(shape) != 1:
        raise ShapeError(
            "E012",
            f"dense({op.units}) receives the spatial tensor {fmt(shape)}",
            f"add `flatten` before it: it would give {math.prod(shape)} features",
        )
    return Out((op.units,), f"{shape[0]} -> {op.units}")


def _dense_fans(op: Dense, inputs: list[Shape]) -> tuple[int, int]:
    """(fan_in, fan_out) = (inputs, units)."""
    return inputs[0][-1], op.units


def _dense_tensors(op: Dense, inputs: list[Shape]) -> dict[str, Tensor]:
    """weight (units, inputs) and bias (units,)."""
    weight = Tensor((op.units, inputs[0][-1]))
    return {"weight": weight} | ({"bias": Tensor((op.units,))} if op.bias else {})


def _dense_macs(op: Dense, inputs: list[Shape], output: Shape) -> int:
    """One multiply-accumulate per weight (and token; bias adds excluded)."""
    return math.prod(inputs[0]) * op.units


SPECS = (
    OpSpec(
        "dense",
        Dense,
        sig("units:count!", "bias:bias", "weight:init"),
        "fully connected layer: units outputs, each a weighted sum of every input",
        _dense_shape,
        tensors=_dense_tensors,
        macs=_dense_macs,
        fans=_dense_fans,
    ),
)
