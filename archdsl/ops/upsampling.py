"""Ops that enlarge a map: transposed convolution and upsampling by a whole-number scale."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import PositiveInt

from archdsl.ir_types import Frozen, Init, NonNegativeInt, Pair, Span
from archdsl.ops.spec import ArgumentError, OpSpec, Out, Shape, ShapeError, Tensor, need
from archdsl.ops.windows import check_groups
from archdsl.params import sig

Offsets = tuple[NonNegativeInt, NonNegativeInt]


class ConvTranspose(Frozen):
    """2-D transposed convolution (the gradient of a conv), as torch.nn.ConvTranspose2d."""

    op: Literal["conv_transpose"] = "conv_transpose"
    span: Span
    filters: PositiveInt
    kernel: Pair
    stride: Pair = (1, 1)
    pad: Offsets = (0, 0)
    output_pad: Offsets = (0, 0)
    groups: PositiveInt = 1
    dilation: Pair = (1, 1)
    bias: bool = True
    weight_init: Init
    bias_init: Init


class Upsample(Frozen):
    """Upsampling by a whole-number scale per axis, as torch.nn.Upsample(scale_factor=...)."""

    op: Literal["upsample"] = "upsample"
    span: Span
    scale: Pair = (2, 2)
    mode: Literal["nearest", "bilinear"] = "nearest"
    align_corners: bool = False


# ----------------------------------------------------------------------------- conv_transpose


def transposed_out(size: int, kernel: int, stride: int, pad: int, output_pad: int, dilation: int):
    """Output length along one axis: (in - 1) * stride - 2 * pad + dilation * (k - 1) + output_pad
    + 1 (PyTorch's ConvTranspose2d)."""
    return (size - 1) * stride - 2 * pad + dilation * (kernel - 1) + output_pad + 1


def _output_pad_below_stride_or_dilation(values: dict) -> dict:
    """output_pad < stride or < dilation on each axis (PyTorch's rule: else the extra rows
    would lie past every input's reach)."""
    stride, dilation = values.get("stride", (1, 1)), values.get("dilation", (1, 1))
    for extra, s, d in zip(values.get("output_pad", (0, 0)), stride, dilation, strict=True):
        if extra >= max(s, d):
            raise ArgumentError(
                "E004",
                "output_pad",
                f"output_pad {extra} must be smaller than the stride ({s}) or the dilation ({d})",
                f"use output_pad <= {max(s, d) - 1}, or a larger stride"
                if max(s, d) > 1
                else "drop `output_pad`: at stride 1 and dilation 1 it must be 0",
            )
    return values


def _conv_transpose_shape(op: ConvTranspose, inputs: list[Shape]) -> Out:
    """Channels become `filters`; each side grows as transposed_out says (E007 below 1)."""
    (shape,) = inputs
    need(shape, "map", "conv_transpose")
    check_groups(shape[0], op.filters, op.groups)
    outs, formulas = [], []
    for a, size in enumerate(shape[1:]):
        k, s, p = op.kernel[a], op.stride[a], op.pad[a]
        extra, d = op.output_pad[a], op.dilation[a]
        out = transposed_out(size, k, s, p, extra, d)
        formula = f"({size} - 1) * {s} - {2 * p} + {d * (k - 1)} + {extra} + 1 = {out}"
        if out <= 0:
            raise ShapeError(
                "E007",
                f"conv_transpose's padding crops its whole output: {formula}",
                "use less padding, a larger kernel or stride, or feed a larger input",
            )
        outs.append(out)
        formulas.append(formula)
    return Out((op.filters, *outs), "; ".join(dict.fromkeys(formulas)))


def _conv_transpose_fans(op: ConvTranspose, inputs: list[Shape]) -> tuple[int, int]:
    """(fan_in, fan_out) as PyTorch computes them for the weight (in, filters / groups, kh,
    kw): (filters / groups) * kh * kw and in * kh * kw."""
    taps = op.kernel[0] * op.kernel[1]
    return (op.filters // op.groups) * taps, inputs[0][0] * taps


def _conv_transpose_tensors(op: ConvTranspose, inputs: list[Shape]) -> dict[str, Tensor]:
    """weight (in, filters / groups, kh, kw), PyTorch's layout, and bias (filters,)."""
    weight = Tensor((inputs[0][0], op.filters // op.groups, *op.kernel))
    return {"weight": weight} | ({"bias": Tensor((op.filters,))} if op.bias else {})


def _conv_transpose_macs(op: ConvTranspose, inputs: list[Shape], output: Shape) -> int:
    """Every weight tap once per input position, as torch's FlopCounterMode counts a transposed
    conv (taps that land in the cropped padding included; bias adds excluded)."""
    return _conv_transpose_tensors(op, inputs)["weight"].size * math.prod(inputs[0][1:])


# ----------------------------------------------------------------------------- upsample


def _align_corners_with_bilinear(values: dict) -> dict:
    """`align_corners` only with `mode=bilinear` (PyTorch refuses it for nearest)."""
    if "align_corners" in values and values.get("mode", "nearest") != "bilinear":
        raise ArgumentError(
            "E004",
            "align_corners",
            "`align_corners` applies only to `mode=bilinear`",
            "drop `align_corners`, or write `mode=bilinear`",
        )
    return values


def _upsample_shape(op: Upsample, inputs: list[Shape]) -> Out:
    """Each side multiplied by its scale."""
    (shape,) = inputs
    need(shape, "map", "upsample")
    c, h, w = shape
    out = (c, h * op.scale[0], w * op.scale[1])
    return Out(out, f"{op.mode} {h}x{w} * {op.scale[0]}x{op.scale[1]} -> {out[1]}x{out[2]}")


SPECS = (
    OpSpec(
        "conv_transpose",
        ConvTranspose,
        sig(
            "filters:count!",
            "kernel:pair!",
            "stride:pair",
            "pad:nonneg_pair",
            "output_pad:nonneg_pair",
            "groups:count",
            "dilation:pair",
            "bias:bias",
            "weight:init",
        ),
        "2-D transposed convolution of a map (PyTorch's ConvTranspose2d), optionally grouped",
        _conv_transpose_shape,
        tensors=_conv_transpose_tensors,
        macs=_conv_transpose_macs,
        fans=_conv_transpose_fans,
        prepare=_output_pad_below_stride_or_dilation,
    ),
    OpSpec(
        "upsample",
        Upsample,
        sig("scale:pair", "mode:choice:nearest|bilinear", "align_corners:bool"),
        "enlarge a map by a whole-number scale: nearest, or bilinear (align_corners optional)",
        _upsample_shape,
        prepare=_align_corners_with_bilinear,
    ),
)
