"""Token sequences (N, L, D) as exporters write them: a map read as tokens (Reshape to
(N, C, H*W), then Transpose), tokens seen again as a map, the class token (a Concat of a
(1, 1, D) constant), the position embedding (an Add of a (1, L, D) constant), one token
(Gather) and the mean of the tokens (ReduceMean over L)."""

from __future__ import annotations

from archdsl.onnx_import.errors import unsupported
from archdsl.onnx_import.graph import Net, Node
from archdsl.onnx_import.layers import Layer

TOKENS_PERM = [0, 2, 1]  # (N, C, L) <-> (N, L, C)


def flattens_map(net: Net, node: Node | None) -> bool:
    """Whether `node` is a Reshape of an (N, C, H, W) map to (N, C, H*W)."""
    if node is None or node.op_type != "Reshape" or node.inputs[0] in net.constants:
        return False
    before, after = net.shape(node.inputs[0]), net.shape(node.outputs[0])
    return len(before) == 4 and after == (*before[:2], before[2] * before[3])


def read_as_tokens(net: Net, node: Node) -> bool:
    """Whether every reader of the flattened map `node` computes is a token op's pattern (a
    Transpose to tokens, or a Reshape back to a map), so that `node` needs no layer of its own."""
    readers = net.consumers.get(node.outputs[0], ())
    return node.outputs[0] != net.output and all(
        (r.op_type == "Transpose" and r.attr("perm") == TOKENS_PERM)
        or (r.op_type == "Reshape" and len(net.shape(r.outputs[0])) == 4)
        for r in readers
    )


def to_tokens(net: Net, node: Node) -> list[Layer] | None:
    """Transpose (N, C, H*W) -> (N, H*W, C) of a flattened map -> to_tokens, else None."""
    source = net.producers.get(node.inputs[0])
    if node.attr("perm") != TOKENS_PERM or not flattens_map(net, source):
        return None
    return [Layer("to_tokens", [], [source.inputs[0]], node.outputs[0], node)]


def to_map(net: Net, node: Node) -> tuple[list[Layer], list[Node]] | None:
    """Reshape (N, D, L) -> (N, D, H, W) of tokens seen channel-first -> to_map(H, W), with the
    nodes it absorbs; None when its input is not tokens transposed or a flattened map."""
    after = net.shape(node.outputs[0])
    if node.inputs[0] in net.constants or len(after) != 4:
        return None
    channel_first, size = node.inputs[0], [("", str(after[2])), ("", str(after[3]))]
    if net.shape(channel_first) != (*after[:2], after[2] * after[3]):
        return None
    source = net.producers.get(channel_first)
    swapped = net.inner(channel_first, "Transpose")
    if swapped is not None and swapped.attr("perm") == TOKENS_PERM:  # ToMap on any tokens
        return [Layer("to_map", size, [swapped.inputs[0]], node.outputs[0], node)], [swapped]
    if not flattens_map(net, source):
        return None
    transposes = [
        r
        for r in net.consumers.get(channel_first, ())
        if r.op_type == "Transpose" and r.attr("perm") == TOKENS_PERM and r.position < node.position
    ]
    if transposes:  # the exporter cancelled to_tokens' transpose against to_map's
        return [Layer("to_map", size, [transposes[0].outputs[0]], node.outputs[0], node)], []
    tokens = f"{node.outputs[0]}/tokens"  # a value of the importer's own, H*W x C
    net.shapes[tokens] = (after[0], after[2] * after[3], after[1])
    layers = [
        Layer("to_tokens", [], [source.inputs[0]], tokens, node),
        Layer("to_map", size, [tokens], node.outputs[0], node),
    ]
    return layers, []


def class_token(net: Net, node: Node) -> Layer | None:
    """Concat along L of a (1, 1, D) constant and tokens -> class_token, else None."""
    import numpy as np

    if len(node.inputs) != 2 or node.attr("axis") not in (1, -2):
        return None
    token, x = net.const(node.inputs[0]), node.inputs[1]
    if token is None or x in net.constants or len(net.shape(x)) != 3:
        return None
    if token.shape != (1, 1, net.shape(x)[2]):
        return None
    tensors = {"token": np.asarray(token, dtype=np.float32)}
    return Layer("class_token", [], [x], node.outputs[0], node, tensors)


def position_embedding(net: Net, node: Node) -> Layer | None:
    """Add of tokens and a (1, L, D) constant -> position_embedding, else None."""
    import numpy as np

    if len(node.inputs) != 2:
        return None
    for x, other in (node.inputs, node.inputs[::-1]):
        table = net.const(other)
        if table is None or x in net.constants or len(net.shape(x)) != 3:
            continue
        if table.shape in ((1, *net.shape(x)[1:]), net.shape(x)[1:]):
            embedding = np.asarray(table, dtype=np.float32).reshape(1, *net.shape(x)[1:])
            return Layer(
                "position_embedding", [], [x], node.outputs[0], node, {"embedding": embedding}
            )
    return None


def token(net: Net, node: Node) -> list[Layer]:
    """Gather of one constant index along L of tokens -> token(index)."""
    index = net.const(node.inputs[1]) if len(node.inputs) == 2 else None
    x = node.inputs[0]
    if index is None or index.size != 1 or index.ndim != 0 or x in net.constants:
        raise unsupported(node, "a gather that is not one token of a sequence (token)")
    if len(net.shape(x)) != 3 or node.attr("axis", 0) % 3 != 1:
        raise unsupported(node, "a gather that is not one token of a sequence (token)")
    position = int(index) % net.shape(x)[1]
    return [Layer("token", [("", str(position))], [x], node.outputs[0], node)]


def mean_tokens(net: Net, node: Node, x: str, axes) -> list[Layer] | None:
    """ReduceMean over L of tokens, the axis dropped -> mean_tokens, else None."""
    if len(net.shape(x)) != 3 or axes is None or [int(a) % 3 for a in axes] != [1]:
        return None
    if node.attr("keepdims", 1):
        return None
    return [Layer("mean_tokens", [], [x], node.outputs[0], node)]
