"""Resize, Upsample and row/column gathers -> upsample or resize, when the pixels each output
reads are exactly the ones the language's op reads."""

from __future__ import annotations

import math

from archdsl.onnx_import.errors import unsupported
from archdsl.onnx_import.graph import Net, Node
from archdsl.onnx_import.layers import Layer


def nearest_layer(node: Node, x: str, output: str, size, out, rows, cols) -> Layer:
    """upsample(scale) or resize(H x W, mode=nearest) reading input rows `rows` and columns
    `cols` (one index per output row and column), or Unsupported."""
    picks = (list(rows), list(cols))
    scales = [o // i if o % i == 0 else 0 for i, o in zip(size, out, strict=True)]
    if all(scales) and all(
        p == [j // s for j in range(o)] for p, s, o in zip(picks, scales, out, strict=True)
    ):
        return Layer("upsample", _scale_args(scales), [x], output, node)
    exact = [[(2 * j + 1) * i // (2 * o) for j in range(o)] for i, o in zip(size, out, strict=True)]
    if picks[0] == exact[0] and picks[1] == exact[1]:
        return Layer(
            "resize", [("", f"{out[0]} x {out[1]}"), ("mode", "nearest")], [x], output, node
        )
    raise unsupported(
        node, "a nearest-neighbour resampling that reads other pixels than upsample or resize"
    )


def _scale_args(scales) -> list[tuple[str, str]]:
    """The scale argument (omitted when it is the default 2)."""
    text = str(scales[0]) if scales[0] == scales[1] else f"{scales[0]} x {scales[1]}"
    return [] if text == "2" else [("", text)]


def resize_layer(net: Net, node: Node) -> list[Layer]:
    """Resize (opset 10+) or Upsample -> upsample / resize."""
    x = node.inputs[0]
    if x in net.constants:
        raise unsupported(node, "it resizes a constant")
    before, after = net.shape(x), net.shape(node.outputs[0])
    if len(before) != 4 or before[:2] != after[:2]:
        raise unsupported(node, "a resize that is not of the H and W of a map")
    if node.attr("antialias", 0) or node.attr("exclude_outside", 0):
        raise unsupported(node, "an antialiased resize")
    size, out = before[2:], after[2:]
    given = _given_scales(net, node)
    mode = node.attr("mode", "nearest")
    coordinates = _coordinates(net, node)
    if mode == "nearest":
        rounding = node.attr(
            "nearest_mode", "round_prefer_floor" if node.op_type == "Resize" else "floor"
        )
        picks = [
            _nearest(
                size[a], out[a], given[a] if given else out[a] / size[a], coordinates, rounding
            )
            for a in (0, 1)
        ]
        return [nearest_layer(node, x, node.outputs[0], size, out, *picks)]
    if mode != "linear":
        raise unsupported(node, f"{mode} resampling: the language has nearest and bilinear")
    return [_bilinear(node, x, size, out, given, coordinates)]


def _coordinates(net: Net, node: Node) -> str:
    """The coordinate transformation of a Resize (asymmetric for Upsample and opset 10)."""
    if node.op_type == "Upsample" or net.opset < 11:
        return "asymmetric"
    return node.attr("coordinate_transformation_mode", "half_pixel")


def _given_scales(net: Net, node: Node):
    """The H and W scales a Resize or Upsample is given (None when it is given sizes)."""
    if node.op_type == "Upsample" and net.opset < 9:
        scales = node.attr("scales")
    else:
        index = 1 if node.op_type == "Upsample" or net.opset < 11 else 2
        value = node.inputs[index] if len(node.inputs) > index else ""
        scales = net.const(value) if value else None
        if value and scales is None:
            raise unsupported(node, "its scales are not constant")
    if scales is None or len(scales) == 0:
        return None
    return [float(s) for s in scales[2:]]


def _bilinear(node: Node, x: str, size, out, given, coordinates: str) -> Layer:
    """Linear resampling -> upsample(scale, mode=bilinear[, align_corners]) or resize(H x W)."""
    whole = all(o % i == 0 for i, o in zip(size, out, strict=True))
    scales = [o // i for i, o in zip(size, out, strict=True)] if whole else None
    consistent = given is None or (whole and [float(s) for s in scales] == given)
    if coordinates == "align_corners" and whole and consistent:
        args = [*_scale_args(scales), ("mode", "bilinear"), ("align_corners", "true")]
        return Layer("upsample", args, [x], node.outputs[0], node)
    if (
        coordinates in ("half_pixel", "pytorch_half_pixel")
        and whole
        and consistent
        and min(out) > 1
    ):
        return Layer(
            "upsample", [*_scale_args(scales), ("mode", "bilinear")], [x], node.outputs[0], node
        )
    if coordinates in ("half_pixel", "pytorch_half_pixel") and given is None and min(out) > 1:
        return Layer("resize", [("", f"{out[0]} x {out[1]}")], [x], node.outputs[0], node)
    raise unsupported(
        node, f"bilinear resampling with {coordinates} coordinates from {list(size)} to {list(out)}"
    )


def _nearest(size: int, out: int, scale: float, coordinates: str, rounding: str) -> list[int]:
    """The input index each output index reads in ONNX's nearest mode."""
    picks = []
    for j in range(out):
        if coordinates == "half_pixel" or (coordinates == "pytorch_half_pixel" and out > 1):
            source = (j + 0.5) / scale - 0.5
        elif coordinates == "tf_half_pixel_for_nn":
            source = (j + 0.5) / scale
        elif coordinates == "align_corners":
            source = j * (size - 1) / (out - 1) if out > 1 else 0.0
        elif coordinates in ("asymmetric", "pytorch_half_pixel"):
            source = j / scale if coordinates == "asymmetric" else 0.0
        else:
            source = math.nan
        picks.append(min(max(_round(source, rounding), 0), size - 1))
    return picks


def _round(value: float, rounding: str) -> int:
    """ONNX's nearest_mode rounding of a source coordinate (-1 for one it cannot compute)."""
    if math.isnan(value):
        return -1
    if rounding == "floor":
        return math.floor(value)
    if rounding == "ceil":
        return math.ceil(value)
    if rounding == "round_prefer_ceil":
        return math.floor(value + 0.5)
    return math.ceil(value - 0.5)  # round_prefer_floor
