"""Multi-head self-attention as exporters write it: an in-projection (a MatMul by a (D, 3D)
constant, plus a (3D,) bias), any nodes splitting the heads, one Softmax, any nodes joining
them, an out-projection (a MatMul by a (D, D) constant, plus a (D,) bias). The nodes between
the projections differ from exporter to exporter, so they are not matched one by one: the
subgraph is run on random tokens and must compute attention(heads) with the projections'
tensors, the heads read from the Softmax's shape."""

from __future__ import annotations

from archdsl.onnx_import.folding import _renamed_proto
from archdsl.onnx_import.graph import Net, Node
from archdsl.onnx_import.layers import Layer

REGION_LIMIT = 64  # nodes between the projections an attention may have
TOLERANCE = 1e-4  # of the largest output value, float32 against float64


def attention(net: Net, node: Node) -> tuple[list[Layer], list[Node]] | None:
    """The attention layer ending at `node` (the out-projection's bias Add, or its MatMul when
    it has no bias) and the nodes it absorbs, or None."""
    out = _projection(net, node, square=True)
    if out is None:
        return None
    product, w_out, b_out = out
    dim = w_out.shape[0]
    found = _region(net, product.inputs[0], dim)
    if found is None:
        return None
    region, (first, w_in, b_in), x = found
    if (b_in is None) != (b_out is None) or len(net.shape(x)) != 3 or net.shape(x)[2] != dim:
        return None
    softmaxes = [n for n in region if n.op_type == "Softmax"]
    if len(softmaxes) != 1:
        return None
    heads = _heads(net, softmaxes[0], dim)
    absorbed = [*region, *({product} - {node})]
    if heads is None or not _enclosed(net, absorbed, node):
        return None
    tensors = _tensors(w_in, b_in, w_out, b_out)
    if not _computes_attention(net, [*absorbed, node], x, node.outputs[0], tensors, heads):
        return None
    args = [("", str(heads))] + ([("bias", "false")] if b_in is None else [])
    return [Layer("attention", args, [x], node.outputs[0], node, tensors)], absorbed


def _projection(net: Net, node: Node, square: bool):
    """(the MatMul, its (D, E) weight, the bias or None) of a projection ending at `node`: a
    MatMul by a constant matrix ((D, D) when `square`, else (D, 3D)), plus a constant vector."""
    product, bias = node, None
    if node.op_type == "Add" and len(node.inputs) == 2:
        for value, other in (node.inputs, node.inputs[::-1]):
            if net.const(other) is not None and net.inner(value, "MatMul") is not None:
                product, bias = net.producers[value], net.const(other)
    if product.op_type != "MatMul" or len(product.inputs) != 2:
        return None
    w = net.const(product.inputs[1])
    if w is None or w.ndim != 2 or product.inputs[0] in net.constants:
        return None
    if w.shape[1] != (1 if square else 3) * w.shape[0]:
        return None
    if bias is not None and bias.shape != (w.shape[1],):
        return None
    return product, w, bias


def _region(net: Net, start: str, dim: int):
    """(the nodes from the in-projection's output to `start`, (the in-projection's first node,
    its weight, its bias), the tokens it reads), or None."""
    region, pending, seen, projection, x = [], [start], set(), None, None
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
            projection, x = (node, inner[1], inner[2]), inner[0].inputs[0]
            region += [node] + ([inner[0]] if inner[0] is not node else [])
            continue
        region.append(node)
        pending += net.data_inputs(node)
        if len(region) > REGION_LIMIT:
            return None
    return (region, projection, x) if projection is not None else None


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
    from onnx import TensorProto, helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    ordered = sorted(nodes, key=lambda n: n.position)
    used = dict.fromkeys(v for n in ordered for v in n.inputs if v in net.constants)
    graph = helper.make_graph(
        [_renamed_proto(n.proto, n) for n in ordered],
        "attention",
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, net.shape(x))],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)],
        [numpy_helper.from_array(net.constants[v], v) for v in used],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", net.opset)])
    tokens = np.random.default_rng(0).standard_normal(net.shape(x)).astype(np.float32)
    try:
        (got,) = ReferenceEvaluator(model).run(None, {x: tokens})
    except Exception:  # a subgraph the evaluator cannot run is no attention we can vouch for
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
