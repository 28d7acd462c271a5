"""Multi-head self-attention as exporters write it: an in-projection (a MatMul by a (D, 3D)
constant, plus a (3D,) bias), any nodes splitting the heads, one Softmax, any nodes joining
them, an out-projection (a MatMul or Gemm by a (D, D) constant, plus a (D,) bias), and any
transposes and reshapes around them (torch's batch-second attention). The nodes between
the projections differ from exporter to exporter, so they are not matched one by one: the
subgraph is run on random tokens and must compute attention(heads) with the projections'
tensors, the heads read from the Softmax's shape."""

from __future__ import annotations

from archdsl.onnx_import.evaluation import evaluated
from archdsl.onnx_import.graph import Net, Node
from archdsl.onnx_import.layers import Layer

REGION_LIMIT = 64  # nodes between the projections an attention may have
TOLERANCE = 1e-4  # of the largest output value, float32 against float64
LAYOUT = ("Transpose", "Reshape", "Squeeze", "Unsqueeze")  # nodes that only move values


def attention(net: Net, node: Node) -> tuple[list[Layer], list[Node]] | None:
    """The attention layer ending at `node` (the out-projection, or a layout node after it,
    computing (N, L, D) tokens) and the nodes it absorbs, or None."""
    tokens = net.shape(node.outputs[0])
    moves, end = _moves_back(net, node, ("Add", "MatMul", "Gemm"))
    out = _projection(net, end, square=True) if end is not None else None
    if len(tokens) != 3 or out is None or out[1].shape[0] != tokens[2]:
        return None
    product, w_out, b_out = out
    found = _region(net, product.inputs[0], tokens[2])
    if found is None:
        return None
    region, (w_in, b_in, source) = found
    before, x = _tokens_before(net, source, tokens)
    if x is None or (b_in is None) != (b_out is None):
        return None
    softmaxes = [n for n in region if n.op_type == "Softmax"]
    heads = _heads(net, softmaxes[0], tokens[2]) if len(softmaxes) == 1 else None
    absorbed = [*region, *before, *({product, end, *moves} - {node})]
    if heads is None or not _enclosed(net, absorbed, node):
        return None
    tensors = _tensors(w_in, b_in, w_out, b_out)
    if not _computes_attention(net, [*absorbed, node], x, node.outputs[0], tensors, heads):
        return None
    args = [("", str(heads))] + ([("bias", "false")] if b_in is None else [])
    return [Layer("attention", args, [x], node.outputs[0], node, tensors)], absorbed


def _moves_back(net: Net, node: Node, wanted: tuple[str, ...]):
    """(the layout nodes from `node` back, the first node of `wanted` types before them), each
    read only by the next; (the layout nodes, None) when there is none."""
    moves = []
    while node.op_type in LAYOUT:
        moves.append(node)
        node = net.inner(node.inputs[0], *LAYOUT, *wanted)
        if node is None:
            return moves, None
    return moves, node if node.op_type in wanted else None


def _tokens_before(net: Net, value: str, tokens: tuple[int, ...]):
    """(the layout nodes, the value of shape `tokens` they move): what the in-projection reads,
    seen back through transposes and reshapes (torch's batch-second attention)."""
    moves = []
    while net.shape(value) != tokens:
        node = net.inner(value, *LAYOUT)
        if node is None or len(moves) >= len(LAYOUT):
            return moves, None
        moves.append(node)
        value = node.inputs[0]
    return moves, value


def _projection(net: Net, node: Node, square: bool):
    """(the MatMul or Gemm, its (D, E) weight as x @ W, the bias or None) of a projection
    ending at `node`: by a constant matrix ((D, D) when `square`, else (D, 3D)), plus a
    constant vector."""
    product, bias = node, None
    if node.op_type == "Add" and len(node.inputs) == 2:
        for value, other in (node.inputs, node.inputs[::-1]):
            if net.const(other) is not None and net.inner(value, "MatMul") is not None:
                product, bias = net.producers[value], net.const(other)
    w = _matrix(net, product)
    if w is None or product.inputs[0] in net.constants:
        return None
    if product.op_type == "Gemm":
        bias = net.const(product.inputs[2]) if len(product.inputs) > 2 else None
    if w.shape[1] != (1 if square else 3) * w.shape[0]:
        return None
    if bias is not None and bias.shape != (w.shape[1],):
        return None
    return product, w, bias


def _matrix(net: Net, node: Node):
    """The constant W of a MatMul x @ W, or of a Gemm x @ B^T + C (alpha = beta = 1)."""
    if node.op_type == "MatMul" and len(node.inputs) == 2:
        w = net.const(node.inputs[1])
        return w if w is not None and w.ndim == 2 else None
    plain = {"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 1}
    if node.op_type != "Gemm" or any(node.attr(k, v) != v for k, v in plain.items()):
        return None
    w = net.const(node.inputs[1])
    return w.T if w is not None and w.ndim == 2 else None


def _region(net: Net, start: str, dim: int):
    """(the nodes from the in-projection's output to `start`, (the in-projection's weight, its
    bias, the value it reads)), or None."""
    region, pending, seen, projection = [], [start], set(), None
    while pending:
        value = pending.pop()
        if value in seen:
            continue
        seen.add(value)
        node = net.producers.get(value)
        if node is None:
            return None  # the model's input: no in-projection on this path
        if node in region:
            continue
        inner = _projection(net, node, square=False)
        if inner is not None and inner[1].shape[0] == dim:
            if projection is not None:
                return None  # separate projections: not one packed in_proj_weight
            projection = (inner[1], inner[2], inner[0].inputs[0])
            region += [node] + ([inner[0]] if inner[0] is not node else [])
            continue
        region.append(node)
        pending += net.data_inputs(node)
        if len(region) > REGION_LIMIT:
            return None
    return (region, projection) if projection is not None else None


def _heads(net: Net, softmax: Node, dim: int) -> int | None:
    """The heads: the Softmax's scores are (heads, L, L) per example (the batch is 1 here)."""
    import math

    scores = net.shape(softmax.outputs[0])
    heads = math.prod(scores[:-2])
    if len(scores) < 3 or scores[-1] != scores[-2] or dim % heads:
        return None
    return heads


def _enclosed(net: Net, absorbed: list[Node], last: Node) -> bool:
    """Whether every value the absorbed nodes compute is read only inside the attention."""
    inside = {*absorbed, last}
    return all(
        value != net.output and set(net.consumers.get(value, ())) <= inside
        for node in absorbed
        for value in node.outputs
        if value
    )


def _tensors(w_in, b_in, w_out, b_out) -> dict:
    """nn.MultiheadAttention's tensors from the projections' (D, E) MatMul weights."""
    import numpy as np

    tensors = {
        "in_proj_weight": np.ascontiguousarray(w_in.T, dtype=np.float32),
        "out_proj.weight": np.ascontiguousarray(w_out.T, dtype=np.float32),
    }
    if b_in is not None:
        tensors["in_proj_bias"] = np.asarray(b_in, dtype=np.float32)
        tensors["out_proj.bias"] = np.asarray(b_out, dtype=np.float32)
    return tensors


def _computes_attention(net: Net, nodes: list[Node], x: str, out: str, tensors, heads) -> bool:
    """Whether the nodes, run by onnx's reference evaluator on random tokens, compute
    attention(heads) with `tensors` (NumPy's, in float64)."""
    import numpy as np

    tokens = np.random.default_rng(0).standard_normal(net.shape(x)).astype(np.float32)
    got = evaluated(net, nodes, x, out, tokens)
    if got is None:
        return False
    want = _reference(tokens.astype(np.float64), tensors, heads)
    return got.shape == want.shape and np.abs(got - want).max() <= TOLERANCE * np.abs(want).max()


def _reference(x, tensors, heads: int):
    """softmax(Q K^T / sqrt(d)) V per head, joined and projected (NumPy, float64)."""
    import numpy as np

    n, length, dim = x.shape
    qkv = x @ tensors["in_proj_weight"].T.astype(np.float64) + tensors.get("in_proj_bias", 0.0)
    q, k, v = (
        part.reshape(n, length, heads, dim // heads).transpose(0, 2, 1, 3)
        for part in np.split(qkv, 3, axis=-1)
    )
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(dim // heads)
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    weights /= weights.sum(axis=-1, keepdims=True)
    joined = (weights @ v).transpose(0, 2, 1, 3).reshape(n, length, dim)
    out = joined @ tensors["out_proj.weight"].T.astype(np.float64)
    return out + tensors.get("out_proj.bias", 0.0)
