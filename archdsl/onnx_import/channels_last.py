"""Layer norms over the channels of a map are exported as NCHW -> NHWC, LayerNormalization,
NHWC -> NCHW, and torch's exporter cancels the transposes between two of them (or between one
and a Swin window attention, which works on NHWC too). This pass puts the cancelled pair back
(an NHWC -> NCHW transpose after each 4-D LayerNormalization, NCHW -> NHWC before each other
reader), so every layer norm and window attention reads and writes NCHW maps again."""

from __future__ import annotations

from archdsl.onnx_import.graph import Net, Node

TO_NCHW = [0, 3, 1, 2]
TO_NHWC = [0, 2, 3, 1]


def with_transposes_restored(net: Net) -> Net:
    """The net with every reader of a 4-D LayerNormalization's output, but its NHWC -> NCHW
    transpose, reading that transpose transposed back."""
    normed = {
        n.outputs[0]
        for n in net.nodes
        if n.op_type == "LayerNormalization" and len(net.shape(n.outputs[0])) == 4
    }
    if not normed:
        return net
    shapes, nodes = dict(net.shapes), []
    back = {v: n for n in net.nodes for v in n.inputs[:1] if v in normed and _is(n, TO_NCHW)}
    forward: dict[str, str] = {}
    placed: set = set()
    for node in net.nodes:
        if node in placed:
            continue
        for value in [v for v in node.inputs if v in normed and not _is(node, TO_NCHW)]:
            if value not in forward:
                forward[value] = _add_pair(net, value, back, placed, nodes, shapes)
        node.inputs = [forward.get(v, v) if not _is(node, TO_NCHW) else v for v in node.inputs]
        nodes.append(node)
        placed.add(node)
    return Net(nodes, net.constants, shapes, net.input, net.output, net.opset)


def _is(node: Node, perm: list[int]) -> bool:
    """Whether the node is a Transpose by `perm`."""
    return node.op_type == "Transpose" and node.attr("perm") == perm


def _add_pair(net, value, back, placed, nodes, shapes) -> str:
    """Append the NHWC -> NCHW transpose of `value` (the graph's own when it has one) and an
    NCHW -> NHWC transpose of that: the name of the NHWC value it computes."""
    producer = net.producers[value]
    to_nchw = back.get(value) or _transpose(producer, value, f"{value}/nchw", TO_NCHW, shapes)
    if to_nchw not in placed:
        nodes.append(to_nchw)
        placed.add(to_nchw)
    nchw = to_nchw.outputs[0]
    again = _transpose(producer, nchw, f"{value}/nhwc", TO_NHWC, shapes)
    nodes.append(again)
    placed.add(again)
    return again.outputs[0]


def _transpose(producer: Node, value: str, out: str, perm: list[int], shapes: dict) -> Node:
    """A new Transpose of `value` by `perm`, named and placed after `producer`."""
    from onnx import helper

    name = f"{producer.name}/{'to_nchw' if perm == TO_NCHW else 'to_nhwc'}"
    proto = helper.make_node("Transpose", [value], [out], name=name, perm=perm)
    shapes[out] = tuple(shapes[value][p] for p in perm)
    attrs = {"perm": perm}
    return Node("Transpose", name, [value], [out], attrs, producer.position, proto=proto)
