"""Convolutions and pools: ONNX's Conv, ConvTranspose, MaxPool and AveragePool, their padding
(explicit, auto_pad, or folded from a Pad node) written as the language's `pad`."""

from __future__ import annotations

from archdsl.onnx_import.errors import unsupported
from archdsl.onnx_import.graph import Net, Node
from archdsl.onnx_import.layers import Layer, keep, pair
from archdsl.onnx_import.reading import data_input, only_output, optional_weight, weight


def padding(node: Node, size: tuple[int, int], kernel, stride, dilation, extra=(0, 0, 0, 0)):
    """The `pad` argument: `p`, `H x W` or `same`, from auto_pad or pads (plus a folded Pad)."""
    from archdsl.ops.windows import resolve_padding

    auto = node.attr("auto_pad", "NOTSET")
    if auto == "VALID":
        pads = [0, 0, 0, 0]
    elif auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = []
        for a in (0, 1):
            before, after = resolve_padding("same", size[a], kernel[a], stride[a], dilation[a])
            pads.append((before, after) if auto == "SAME_UPPER" else (after, before))
        pads = [pads[0][0], pads[1][0], pads[0][1], pads[1][1]]
    else:
        pads = list(node.attr("pads", [0, 0, 0, 0]))
    pads = [p + e for p, e in zip(pads, extra, strict=True)]
    if pads[0] == pads[2] and pads[1] == pads[3]:
        return pair(pads[:2], node, "padding")
    same = [resolve_padding("same", size[a], kernel[a], stride[a], dilation[a]) for a in (0, 1)]
    if [same[0][0], same[1][0], same[0][1], same[1][1]] == pads:
        return "same"
    raise unsupported(
        node,
        f"its padding {pads} (top, left, bottom, right) differs before and after: the language "
        "pads both sides equally, or as `same`",
    )


def conv(net: Net, node: Node, source: str | None = None, extra=(0, 0, 0, 0)) -> list[Layer]:
    """Conv -> conv(filters, kernel, stride, pad, dilation, groups, bias)."""
    only_output(net, node)
    x = source or data_input(net, node)
    w = weight(net, node, 1, "weight")
    b = optional_weight(net, node, 2, "bias")
    kernel = list(node.attr("kernel_shape", w.shape[2:]))
    stride = list(node.attr("strides", [1, 1]))
    dilation = list(node.attr("dilations", [1, 1]))
    size = net.shape(x)[2:]
    if len(kernel) != 2 or len(size) != 2:
        raise unsupported(node, "a convolution that is not 2-D")
    args = keep(
        [
            ("", str(w.shape[0]), None),
            ("kernel", pair(kernel, node, "kernel"), None),
            ("stride", pair(stride, node, "stride"), "1"),
            ("pad", padding(node, size, kernel, stride, dilation, extra), "0"),
            ("dilation", pair(dilation, node, "dilation"), "1"),
            ("groups", str(node.attr("group", 1)), "1"),
            ("bias", "true" if b is not None else "false", "true"),
        ]
    )
    tensors = {"weight": w} | ({"bias": b} if b is not None else {})
    return [Layer("conv", args, [x], node.outputs[0], node, tensors)]


def pool(net: Net, node: Node, source: str | None = None, extra=(0, 0, 0, 0)) -> list[Layer]:
    """MaxPool / AveragePool -> maxpool / avgpool(kernel, stride, pad, ceil, count_pad)."""
    only_output(net, node)
    x = source or data_input(net, node)
    kernel = list(node.attr("kernel_shape"))
    stride = list(node.attr("strides", [1] * len(kernel)))
    if any(d != 1 for d in node.attr("dilations", [1, 1])):
        raise unsupported(node, "a dilated pooling window: the language's pools are not dilated")
    size = net.shape(x)[2:]
    if len(kernel) != 2 or len(size) != 2:
        raise unsupported(node, "a pooling window that is not 2-D")
    pad = padding(node, size, kernel, stride, (1, 1), extra)
    sides = [] if pad == "same" else [int(p) for p in pad.split(" x ")] * 2  # "1" is 1 x 1
    if any(p > k // 2 for p, k in zip(sides, kernel, strict=False)):
        raise unsupported(node, f"its padding {pad} is more than half its kernel {kernel}")
    ceil = bool(node.attr("ceil_mode", 0))
    if ceil and pad == "same":
        raise unsupported(node, "`same` padding with ceil mode: the language refuses the pair")
    op = "maxpool" if node.op_type == "MaxPool" else "avgpool"
    written = [
        ("", pair(kernel, node, "kernel"), None),
        ("stride", pair(stride, node, "stride"), pair(kernel, node, "kernel")),
        ("pad", pad, "0"),
        ("ceil", "true" if ceil else "false", "false"),
    ]
    if op == "avgpool" and pad != "0":
        # padding folded from a Pad node holds real zeros, which the divisor counts
        counted = node.attr("count_include_pad", 0) or any(extra)
        written.append(("count_pad", "true" if counted else "false", "true"))
    return [Layer(op, keep(written), [x], node.outputs[0], node)]


def conv_transpose(net: Net, node: Node) -> list[Layer]:
    """ConvTranspose -> conv_transpose(filters, kernel, stride, pad, output_pad, groups, ...)."""
    only_output(net, node)
    x = data_input(net, node)
    w = weight(net, node, 1, "weight")
    b = optional_weight(net, node, 2, "bias")
    if node.attr("output_shape") or node.attr("auto_pad", "NOTSET") != "NOTSET":
        raise unsupported(node, "an output_shape or auto_pad: write its padding explicitly")
    kernel = list(node.attr("kernel_shape", w.shape[2:]))
    pads = list(node.attr("pads", [0, 0, 0, 0]))
    if pads[:2] != pads[2:]:
        raise unsupported(node, f"its padding {pads} differs before and after")
    groups = node.attr("group", 1)
    args = keep(
        [
            ("", str(w.shape[1] * groups), None),
            ("kernel", pair(kernel, node, "kernel"), None),
            ("stride", pair(node.attr("strides", [1, 1]), node, "stride"), "1"),
            ("pad", pair(pads[:2], node, "padding"), "0"),
            ("output_pad", pair(node.attr("output_padding", [0, 0]), node, "output padding"), "0"),
            ("groups", str(groups), "1"),
            ("dilation", pair(node.attr("dilations", [1, 1]), node, "dilation"), "1"),
            ("bias", "true" if b is not None else "false", "true"),
        ]
    )
    tensors = {"weight": w} | ({"bias": b} if b is not None else {})
    return [Layer("conv_transpose", args, [x], node.outputs[0], node, tensors)]
