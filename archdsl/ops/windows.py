"""Ops that slide a window over a map: conv, max and average pools, global and adaptive pools."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import PositiveInt

from archdsl.ir_types import Frozen, Init, Padding, Pair, Span
from archdsl.ops.spec import ArgumentError, OpSpec, Out, Shape, ShapeError, Tensor, need
from archdsl.params import sig

# ----------------------------------------------------------------------------- IR nodes


class Conv(Frozen):
    """2-D convolution (cross-correlation), optionally grouped."""

    op: Literal["conv"] = "conv"
    span: Span
    filters: PositiveInt
    kernel: Pair
    stride: Pair = (1, 1)
    pad: Padding = (0, 0)
    dilation: Pair = (1, 1)
    groups: PositiveInt = 1
    bias: bool = True
    ceil: bool = False
    weight_init: Init
    bias_init: Init


class MaxPool(Frozen):
    """Max pooling; padded cells never win."""

    op: Literal["maxpool"] = "maxpool"
    span: Span
    kernel: Pair
    stride: Pair
    pad: Padding = (0, 0)
    ceil: bool = False


class AvgPool(Frozen):
    """Average pooling; `count_pad` says whether padded cells count in the divisor."""

    op: Literal["avgpool"] = "avgpool"
    span: Span
    kernel: Pair
    stride: Pair
    pad: Padding = (0, 0)
    ceil: bool = False
    count_pad: bool = True


class GlobalAvgPool(Frozen):
    """Mean over all spatial positions, keeping a 1x1 map."""

    op: Literal["global_avgpool"] = "global_avgpool"
    span: Span


class AdaptiveAvgPool(Frozen):
    """Average pooling to a fixed output size, with PyTorch's window boundaries."""

    op: Literal["adaptive_avgpool"] = "adaptive_avgpool"
    span: Span
    size: Pair


# ----------------------------------------------------------------------------- window arithmetic


def resolve_padding(pad, size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """(before, after) padding along one axis; `same` pads as TensorFlow does (extra after)."""
    if pad == "valid":
        return (0, 0)
    if pad == "same":
        effective = dilation * (kernel - 1) + 1
        total = max((math.ceil(size / stride) - 1) * stride + effective - size, 0)
        return (total // 2, total - total // 2)
    return (pad, pad)


def window_out(
    size: int,
    kernel: int,
    stride: int,
    before: int,
    after: int,
    dilation: int,
    ceil: bool,
    pool: bool = False,
) -> int:
    """Output length of a sliding window; in ceil mode a pool (not a conv) drops a last window
    that would start in the padding, as PyTorch's pools do."""
    span = size + before + after - (dilation * (kernel - 1) + 1)
    if not ceil:
        return span // stride + 1 if span >= 0 else 0
    out = -(-span // stride) + 1
    if pool and (out - 1) * stride >= size + before:
        out -= 1
    return out


def _axis_pads(op, hw: tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]]:
    """Resolved (before, after) padding for H and W."""
    dil = getattr(op, "dilation", (1, 1))
    pad = op.pad if isinstance(op.pad, str) else None
    return tuple(
        resolve_padding(pad or op.pad[a], hw[a], op.kernel[a], op.stride[a], dil[a]) for a in (0, 1)
    )


def _windowed(op, shape: Shape, channels: int, what: str) -> Out:
    """Shared rule of conv and pools: output size, formula, tiling and collapse warnings."""
    c, h, w = shape
    dil = getattr(op, "dilation", (1, 1))
    pads = _axis_pads(op, (h, w))
    outs, formulas, notes = [], [], []
    for a, size in enumerate((h, w)):
        before, after = pads[a]
        k, s, d = op.kernel[a], op.stride[a], dil[a]
        o = window_out(size, k, s, before, after, d, op.ceil, op.op != "conv")
        effective = d * (k - 1) + 1
        formulas.append(_window_formula(size, before + after, effective, s, op.ceil, o))
        if o <= 0:
            raise ShapeError(
                "E007",
                f"{what} {_kxk(op.kernel)} needs at least {effective} {'rows' if a == 0 else 'columns'}"
                f" (padding included) but gets {size + before + after}",
                "use a smaller kernel or stride, add padding, or feed a larger input",
            )
        outs.append(o)
        unread = size + before + after - ((o - 1) * s + effective)
        # a window smaller than its stride skips pixels by design (strided 1x1 projections)
        skipped = 0 if effective < s else max(unread - after, 0)
        notes.append((skipped, size, k, s, before, after, effective))
    warns = list(_tiling_warning(op, what, notes))
    if h == 1 and w == 1 and max(op.kernel) > 1:
        warns.append(
            (
                "W102",
                f"{what} {_kxk(op.kernel)} runs on a 1x1 map: every tap but one sees only padding",
                "the maps collapsed earlier (check the strides before this layer), or use a 1x1 kernel",
            )
        )
    return Out((channels, outs[0], outs[1]), "; ".join(dict.fromkeys(formulas)), tuple(warns))


def _window_formula(size: int, pads: int, effective: int, stride: int, ceil: bool, out: int) -> str:
    """How an output length was computed, e.g. `floor((227 + 0 - 11) / 4) + 1 = 55`."""
    rounding = "ceil" if ceil else "floor"
    text = f"{rounding}(({size} + {pads} - {effective}) / {stride})"
    if ceil and out == -(-(size + pads - effective) // stride):  # a pool dropped its last window
        return f"{text} + 1 - 1 = {out} (the last window would start in the padding)"
    return f"{text} + 1 = {out}"


def _tiling_warning(op, what: str, notes):
    """W101 when a floor-rounded window leaves input rows or columns (not padding) unread."""
    if op.ceil or all(n[0] <= 0 for n in notes):
        return
    same_axes = notes[0] == notes[1]
    axes = (
        [("rows and columns", notes[0])]
        if same_axes
        else [(label, n) for label, n in (("rows", notes[0]), ("columns", notes[1])) if n[0] > 0]
    )
    for label, (lost, size, _k, s, before, after, effective) in axes:
        exact = (size + before + after - effective) / s + 1
        smaller, larger = size - lost, size + (s - lost)
        tiling_pad = next(
            (p for p in range(before + 1, before + s + 1) if (size + 2 * p - effective) % s == 0),
            None,
        )
        remedies = [f"`pad={tiling_pad}`"] if tiling_pad is not None and before == after else []
        remedies.append("`ceil=true` (rounding up, as Caffe pools and cuda-convnet convs do)")
        yield (
            "W101",
            f"{what} {_kxk(op.kernel)} at stride {s} does not tile its {size}-pixel input: "
            f"({size} + {before + after} - {effective}) / {s} + 1 = {exact:g}, "
            f"so {_unread(lost, label)} never read",
            f"an input of {larger} (or {smaller}) would tile exactly; so would "
            + " or ".join(remedies),
        )


def _unread(lost: int, label: str) -> str:
    """'the last row and column are', 'the last 3 rows are', ..."""
    if lost == 1:
        singular = label.replace("rows", "row").replace("columns", "column")
        return f"the last {singular} {'are' if ' and ' in label else 'is'}"
    return f"the last {lost} {label} are"


def _kxk(kernel: tuple[int, int]) -> str:
    return f"{kernel[0]}x{kernel[1]}"


# ----------------------------------------------------------------------------- arguments


def _not_ceil_with_same(values: dict) -> dict:
    """`ceil=true` with `pad=same` is refused: same rounds up already."""
    if values.get("pad") == "same" and values.get("ceil"):
        raise ArgumentError(
            "E004",
            "ceil",
            "`ceil=true` has no meaning with `pad=same`, which always gives ceil(in / stride) "
            "windows (rounding up already)",
            "drop `ceil=true`, or give the padding explicitly",
        )
    return values


def _pool_arguments(values: dict) -> dict:
    """The stride defaults to the kernel; explicit padding is at most half the kernel
    (PyTorch's rule: else whole windows would see only padding)."""
    values = {"stride": values["kernel"], **values}
    pad = values.get("pad", (0, 0))
    if not isinstance(pad, str):
        for p, k in zip(pad, values["kernel"], strict=True):
            if p > k // 2:
                raise ArgumentError(
                    "E004",
                    "pad",
                    f"pool padding {p} is more than half the kernel {k}",
                    f"use pad <= {k // 2}, or `pad=same`",
                )
    return _not_ceil_with_same(values)


# ----------------------------------------------------------------------------- rules


def check_groups(channels: int, filters: int, groups: int) -> None:
    """E008 unless `groups` divides both the input channels and the filters."""
    for count, what in ((channels, "input channels"), (filters, "filters")):
        if count % groups:
            divisors = [
                g
                for g in range(1, min(channels, filters) + 1)
                if channels % g == 0 and filters % g == 0
            ]
            raise ShapeError(
                "E008",
                f"groups={groups} does not divide the {count} {what}",
                f"groups must divide both {channels} and {filters}: try one of {divisors[-6:]}",
            )


def _conv_shape(op: Conv, inputs: list[Shape]) -> Out:
    """Convolution: channels become `filters`; groups must divide both channel counts."""
    (shape,) = inputs
    need(shape, "map", "conv")
    check_groups(shape[0], op.filters, op.groups)
    return _windowed(op, shape, op.filters, "conv")


def _conv_fans(op: Conv, inputs: list[Shape]) -> tuple[int, int]:
    """(fan_in, fan_out) as PyTorch and Keras compute them: (in / groups) * kh * kw, filters * kh * kw."""
    taps = op.kernel[0] * op.kernel[1]
    return (inputs[0][0] // op.groups) * taps, op.filters * taps


def _conv_tensors(op: Conv, inputs: list[Shape]) -> dict[str, Tensor]:
    """weight (filters, in / groups, kh, kw) and bias (filters,)."""
    weight = Tensor((op.filters, inputs[0][0] // op.groups, *op.kernel))
    return {"weight": weight} | ({"bias": Tensor((op.filters,))} if op.bias else {})


def _conv_macs(op: Conv, inputs: list[Shape], output: Shape) -> int:
    """One multiply-accumulate per weight tap and output value (bias adds excluded)."""
    return _conv_fans(op, inputs)[0] * math.prod(output)


def _pool_shape(op, inputs: list[Shape]) -> Out:
    """Max or average pooling: channels kept."""
    (shape,) = inputs
    need(shape, "map", op.op)
    return _windowed(op, shape, shape[0], op.op)


def _global_pool_shape(op, inputs: list[Shape]) -> Out:
    """Global average pooling to C x 1 x 1."""
    (shape,) = inputs
    need(shape, "map", op.op)
    return Out((shape[0], 1, 1), f"mean over {shape[1]}x{shape[2]}")


def _adaptive_pool_shape(op: AdaptiveAvgPool, inputs: list[Shape]) -> Out:
    """Adaptive average pooling to C x size."""
    (shape,) = inputs
    need(shape, "map", op.op)
    return Out((shape[0], *op.size), f"adaptive {shape[1]}x{shape[2]} -> {_kxk(op.size)}")


POOL_ARGS = ("kernel:pair!", "stride:pair", "pad:pad", "ceil:bool")

SPECS = (
    OpSpec(
        "conv",
        Conv,
        sig(
            "filters:count!",
            "kernel:pair!",
            "stride:pair",
            "pad:pad",
            "dilation:pair",
            "groups:count",
            "bias:bias",
            "weight:init",
            "ceil:bool",
        ),
        "2-D convolution (cross-correlation) of a map, optionally grouped and dilated",
        _conv_shape,
        tensors=_conv_tensors,
        macs=_conv_macs,
        fans=_conv_fans,
        prepare=_not_ceil_with_same,
        window=True,
    ),
    OpSpec(
        "maxpool",
        MaxPool,
        sig(*POOL_ARGS),
        "max over each window of a map; padded cells never win",
        _pool_shape,
        prepare=_pool_arguments,
        window=True,
    ),
    OpSpec(
        "avgpool",
        AvgPool,
        sig(*POOL_ARGS, "count_pad:bool"),
        "mean over each window of a map; `count_pad`: padded cells count in the divisor",
        _pool_shape,
        prepare=_pool_arguments,
        window=True,
    ),
    OpSpec(
        "global_avgpool",
        GlobalAvgPool,
        (),
        "mean over all positions of a map: C x 1 x 1",
        _global_pool_shape,
    ),
    OpSpec(
        "adaptive_avgpool",
        AdaptiveAvgPool,
        sig("size:pair!"),
        "average pooling to a fixed size, with PyTorch's bin boundaries",
        _adaptive_pool_shape,
    ),
)
