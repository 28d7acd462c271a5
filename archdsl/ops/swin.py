"""Swin Transformer's ops on maps: shifted-window attention and the patch merging gather."""

from __future__ import annotations

from typing import Literal

from pydantic import NonNegativeInt, PositiveInt

from archdsl.ir_types import Frozen, Span
from archdsl.ops.channels import divisors
from archdsl.ops.spec import ArgumentError, OpSpec, Out, Shape, ShapeError, Tensor, need
from archdsl.params import sig


class WindowAttention(Frozen):
    """torchvision's ShiftedWindowAttention on the positions of a C x H x W map."""

    op: Literal["window_attention"] = "window_attention"
    span: Span
    heads: PositiveInt
    window: PositiveInt
    shift: NonNegativeInt = 0


class SpaceToDepth(Frozen):
    """Each block x block patch's pixels stacked on the channels, in torchvision Swin's order."""

    op: Literal["space_to_depth"] = "space_to_depth"
    span: Span
    block: PositiveInt = 2


def padded(size: int, multiple: int) -> int:
    """`size` rounded up to a multiple of `multiple` (the zero padding after the map)."""
    return -(-size // multiple) * multiple


def _shift_below_window(values: dict) -> dict:
    """The cyclic shift moves by less than a window (torchvision's shift is window // 2)."""
    window, shift = values["window"], values.get("shift", 0)
    if shift >= window:
        raise ArgumentError(
            "E004",
            "shift",
            f"window_attention shifts by {shift}, not less than its window of {window}",
            f"use a shift from 0 to {window - 1}; Swin shifts every other block by "
            f"window // 2 = {window // 2}",
        )
    return values


def _attention_shape(op: WindowAttention, inputs: list[Shape]) -> Out:
    """The map's shape is kept; the heads must divide the channels."""
    (shape,) = inputs
    need(shape, "map", "window_attention")
    channels, h, w = shape
    if channels % op.heads:
        raise ShapeError(
            "E008",
            f"window_attention: {op.heads} heads do not divide the {channels} channels",
            f"use a number of heads that divides {channels}: one of {divisors(channels)[:8]}",
        )
    windows = (padded(h, op.window) // op.window) * (padded(w, op.window) // op.window)
    shifted = f"shifted by {_shifts(op, h, w)}" if any(_shifts(op, h, w)) else "not shifted"
    tiles = f"{windows} window{'s' if windows > 1 else ''} of {op.window}x{op.window}"
    return Out(shape, f"{tiles}, {op.heads} heads, {shifted}")


def _shifts(op: WindowAttention, h: int, w: int) -> tuple[int, int]:
    """The (rows, columns) shift torchvision applies: none along an axis where the window
    covers the padded map."""
    rows, columns = (op.shift if op.window < padded(n, op.window) else 0 for n in (h, w))
    return rows, columns


def _attention_tensors(op: WindowAttention, inputs: list[Shape]) -> dict[str, Tensor]:
    """torchvision's: qkv (3C, C) and (3C,), proj (C, C) and (C,), and the relative position
    bias table ((2w - 1)^2, heads)."""
    c = inputs[0][0]
    return {
        "qkv.weight": Tensor((3 * c, c)),
        "qkv.bias": Tensor((3 * c,)),
        "proj.weight": Tensor((c, c)),
        "proj.bias": Tensor((c,)),
        "relative_position_bias_table": Tensor(((2 * op.window - 1) ** 2, op.heads)),
    }


def _attention_macs(op: WindowAttention, inputs: list[Shape], output: Shape) -> int:
    """Over every position of the padded map: the qkv and proj projections (4 C^2) and the
    Q.K^T and A.V products (2 w^2 C)."""
    c, h, w = inputs[0]
    positions = padded(h, op.window) * padded(w, op.window)
    return positions * (4 * c * c + 2 * op.window**2 * c)


def _space_to_depth_shape(op: SpaceToDepth, inputs: list[Shape]) -> Out:
    """C x H x W -> block^2 C x ceil(H / block) x ceil(W / block)."""
    (shape,) = inputs
    need(shape, "map", "space_to_depth")
    c, h, w = shape
    b = op.block
    out = (b * b * c, padded(h, b) // b, padded(w, b) // b)
    pads = [f"{what} padded to {padded(n, b)}" for what, n in (("H", h), ("W", w)) if n % b]
    return Out(out, "; ".join([f"{b}x{b} patches of {c} channels", *pads]))


SPECS = (
    OpSpec(
        "window_attention",
        WindowAttention,
        sig("heads:count!", "window:count!", "shift:int"),
        "multi-head self-attention within window x window windows of a map, cyclically "
        "shifted by `shift` (torchvision's ShiftedWindowAttention)",
        _attention_shape,
        tensors=_attention_tensors,
        macs=_attention_macs,
        prepare=_shift_below_window,
    ),
    OpSpec(
        "space_to_depth",
        SpaceToDepth,
        sig("block:count"),
        "each block x block patch's pixels stacked on the channels, offsets (0, 0), (1, 0), "
        "(0, 1), (1, 1) (row first) as torchvision's Swin patch merging",
        _space_to_depth_shape,
    ),
)
