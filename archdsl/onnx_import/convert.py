"""One ONNX node -> the language's op(s): a dispatch table by op type."""

from __future__ import annotations

from archdsl.diagnostics import visible
from archdsl.onnx_import.errors import unsupported
from archdsl.onnx_import.graph import Net, Node
from archdsl.onnx_import.layers import Layer, keep, number
from archdsl.onnx_import.reading import data_input, only_output, optional_weight, single, weight
from archdsl.onnx_import.resizing import resize_layer
from archdsl.onnx_import.tokens import (
    class_token,
    flattens_map,
    mean_tokens,
    position_embedding,
    read_as_tokens,
    to_tokens,
    token,
)
from archdsl.onnx_import.windows import conv, conv_transpose, pool

PLAIN = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "HardSwish": "hardswish"}
PLAIN |= {"Mish": "mish", "GlobalAveragePool": "global_avgpool"}
MERGES = {"Concat": "concat", "Add": "add", "Mul": "mul"}


def convert(net: Net, node: Node) -> list[Layer]:
    """The layers computing what `node` computes, or Unsupported naming it."""
    if node.domain != "":
        raise unsupported(node, f"an op of the domain '{visible(node.domain)}', not standard ONNX")
    if node.op_type in PLAIN:
        return [single(net, node, PLAIN[node.op_type])]
    rule = RULES.get(node.op_type)
    if rule is None:
        raise unsupported(node, "the language has no op that computes it")
    return rule(net, node)


def _reduce_mean(net: Net, node: Node) -> list[Layer]:
    """ReduceMean over H and W -> global_avgpool (then flatten when the axes are dropped);
    over the tokens -> mean_tokens."""
    x = data_input(net, node)
    axes = node.attr("axes")
    if axes is None and len(node.inputs) > 1 and node.inputs[1]:
        axes = net.const(node.inputs[1])
    tokens = mean_tokens(net, node, x, axes)
    if tokens is not None:
        return tokens
    rank = len(net.shape(x))
    if axes is None or rank != 4 or sorted(int(a) % rank for a in axes) != [2, 3]:
        raise unsupported(node, "a mean over other axes than H and W")
    pooled = Layer("global_avgpool", [], [x], node.outputs[0], node)
    if node.attr("keepdims", 1):
        return [pooled]
    pooled.output = f"{node.outputs[0]}/pooled"  # a value of the importer's own, C x 1 x 1
    net.shapes[pooled.output] = (*net.shape(x)[:2], 1, 1)
    return [pooled, Layer("flatten", [], [pooled.output], node.outputs[0], node)]


# ----------------------------------------------------------------------------- dense, norms


def dense_layer(node: Node, x: str, output: str, w, b) -> Layer:
    """dense(units) with weight (units, inputs) and an optional bias."""
    args = keep(
        [("", str(w.shape[0]), None), ("bias", "true" if b is not None else "false", "true")]
    )
    return Layer(
        "dense", args, [x], output, node, {"weight": w} | ({"bias": b} if b is not None else {})
    )


def _gemm(net: Net, node: Node) -> list[Layer]:
    """Gemm (transB, alpha = beta = 1) -> dense."""
    import numpy as np

    x = data_input(net, node)
    w = weight(net, node, 1, "weight")
    if node.attr("transA", 0) or node.attr("alpha", 1.0) != 1.0 or len(net.shape(x)) != 2:
        raise unsupported(node, "a Gemm that is not x @ W (+ b) on a batch of vectors")
    w = w if node.attr("transB", 0) else w.T
    b = optional_weight(net, node, 2, "bias")
    if b is not None:
        if node.attr("beta", 1.0) != 1.0:
            raise unsupported(node, "a Gemm whose bias is scaled (beta != 1)")
        b = np.broadcast_to(b.reshape(-1), (w.shape[0],)).copy()
    return [dense_layer(node, x, node.outputs[0], np.ascontiguousarray(w), b)]


def _matmul(net: Net, node: Node) -> list[Layer]:
    """MatMul by a constant matrix -> dense without bias."""
    import numpy as np

    x = data_input(net, node)
    w = weight(net, node, 1, "weight")
    if w.ndim != 2 or len(net.shape(x)) not in (2, 3):
        raise unsupported(node, "a MatMul that is not vectors (or tokens) times a constant matrix")
    return [dense_layer(node, x, node.outputs[0], np.ascontiguousarray(w.T), None)]


def _batchnorm(net: Net, node: Node) -> list[Layer]:
    """BatchNormalization (inference) -> batchnorm(eps, momentum)."""
    if node.attr("training_mode", 0):
        raise unsupported(node, "batch normalisation in training mode")
    names = ("weight", "bias", "running_mean", "running_var")
    tensors = {n: weight(net, node, i + 1, n.replace("_", " ")) for i, n in enumerate(names)}
    momentum = float(f"{1.0 - node.attr('momentum', 0.9):.6g}")  # ONNX weighs the old statistic
    args = [("eps", number(node.attr("epsilon", 1e-5), node), number(1e-5, node))]
    if 0.0 < momentum <= 1.0:
        args.append(("momentum", number(momentum, node), number(0.1, node)))
    return [single(net, node, "batchnorm", keep(args), tensors)]


def _layernorm(net: Net, node: Node) -> list[Layer]:
    """LayerNormalization over the features of a vector or of each token -> layernorm(eps)."""
    x = data_input(net, node)
    rank = len(net.shape(x))
    if rank not in (2, 3) or node.attr("axis", -1) % rank != rank - 1:
        raise unsupported(node, "a layer norm over other axes than a vector's or token's features")
    return [layernorm_layer(net, node, x, node.outputs[0])]


def layernorm_layer(net: Net, node: Node, x: str, output: str) -> Layer:
    """layernorm(eps) with its scale and shift (a zero shift when the node has none)."""
    import numpy as np

    only_output(net, node)
    scale = weight(net, node, 1, "scale")
    shift = optional_weight(net, node, 2, "bias")
    shift = np.zeros_like(scale) if shift is None else shift
    args = keep([("eps", number(node.attr("epsilon", 1e-5), node), number(1e-5, node))])
    tensors = {"weight": scale.reshape(-1), "bias": shift.reshape(-1)}
    return Layer("layernorm", args, [x], output, node, tensors)


def _lrn(net: Net, node: Node) -> list[Layer]:
    """LRN -> lrn(size, alpha / size, beta, k): the language writes the paper's alpha."""
    size = node.attr("size")
    if size % 2 == 0:
        raise unsupported(node, f"an LRN of even size {size}: its window is centred differently")
    alpha = paper_alpha(node.attr("alpha", 1e-4), size)
    return [lrn_layer(net, node, size, alpha, node.attr("beta", 0.75), node.attr("bias", 1.0))]


def paper_alpha(alpha: float, size: int) -> float:
    """The paper's alpha (not divided by `size`) of an LRN with `alpha` divided by it: the
    shortest decimal whose product with `size` is `alpha` in float32, as the backends compute
    it (so 5e-4 over 5 is 0.0001, not the float32 quotient 0.000100000005)."""
    import numpy as np

    target = np.float32(alpha)
    for digits in range(1, 18):
        candidate = float(f"{alpha / size:.{digits}g}")
        if np.float32(candidate * size) == target:
            return candidate
    return alpha / size


def lrn_layer(
    net: Net, node: Node, size: int, alpha: float, beta: float, k: float, x=None
) -> Layer:
    """lrn with the paper's alpha (not divided by size)."""
    args = [
        ("size", str(size), "5"),
        ("alpha", number(alpha, node), number(1e-4, node)),
        ("beta", number(beta, node), number(0.75, node)),
        ("k", number(k, node), number(2.0, node)),
    ]
    return Layer("lrn", keep(args), [x or data_input(net, node)], node.outputs[0], node)


# ----------------------------------------------------------------------------- activations


def _clip(net: Net, node: Node) -> list[Layer]:
    """Clip(0, 6) -> relu6, Clip(0, none) -> relu."""
    if net.opset < 11:
        low, high = node.attr("min", float("-inf")), node.attr("max", float("inf"))
    else:
        low = (
            net.scalar(node.inputs[1]) if len(node.inputs) > 1 and node.inputs[1] else float("-inf")
        )
        high = (
            net.scalar(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else float("inf")
        )
    if low == 0.0 and high == 6.0:
        return [single(net, node, "relu6")]
    if low == 0.0 and high == float("inf"):
        return [single(net, node, "relu")]
    raise unsupported(
        node, f"a clip to [{low}, {high}]: the language has relu (0, none) and relu6 (0, 6)"
    )


def _hard_sigmoid(net: Net, node: Node) -> list[Layer]:
    """HardSigmoid(alpha = 1/6, beta = 0.5) -> hardsigmoid (PyTorch's)."""
    alpha, beta = node.attr("alpha", 0.2), node.attr("beta", 0.5)
    if abs(alpha - 1 / 6) > 1e-6 or beta != 0.5:
        raise unsupported(
            node,
            f"a hard sigmoid with alpha {alpha:g}, beta {beta:g}: the language's is relu6(x + 3) / 6",
        )
    return [single(net, node, "hardsigmoid")]


def _leaky_relu(net: Net, node: Node) -> list[Layer]:
    """LeakyRelu(alpha) -> leaky_relu(slope)."""
    alpha = node.attr("alpha", 0.01)
    if alpha < 0:
        raise unsupported(node, "a negative slope")
    return [single(net, node, "leaky_relu", keep([("", number(alpha, node), number(0.01, node))]))]


def _gelu(net: Net, node: Node) -> list[Layer]:
    """Gelu(approximate) -> gelu(approximate)."""
    approximate = node.attr("approximate", "none")
    return [single(net, node, "gelu", keep([("approximate", approximate, "none")]))]


def _softmax(net: Net, node: Node) -> list[Layer]:
    """Softmax over the channels (the features of a vector) -> softmax."""
    rank = len(net.shape(data_input(net, node)))
    axis = node.attr("axis", 1 if net.opset < 13 else -1) % rank
    if axis != 1 or (net.opset < 13 and rank != 2):
        raise unsupported(node, "a softmax over other axes than the channels")
    return [single(net, node, "softmax")]


# ----------------------------------------------------------------------------- shaping, merges


def _flatten(net: Net, node: Node) -> list[Layer]:
    """Flatten(axis 1), or a Reshape / Squeeze that keeps the batch and flattens the rest."""
    x = data_input(net, node)
    before, after = net.shape(x), net.shape(node.outputs[0])
    if node.op_type == "Flatten" and node.attr("axis", 1) != 1:
        raise unsupported(node, "a flatten that does not keep the batch axis alone")
    if len(after) != 2 or after[0] != before[0]:
        raise unsupported(
            node, f"a reshape of {list(before)} to {list(after)}: the language only flattens a map"
        )
    return [single(net, node, "flatten")]


def _reshape(net: Net, node: Node) -> list[Layer]:
    """A Reshape that flattens a map for the token ops reading it (no layer of its own), or
    one that flattens (flatten)."""
    if flattens_map(net, node) and read_as_tokens(net, node):
        return []
    return _flatten(net, node)


def _transpose(net: Net, node: Node) -> list[Layer]:
    """A Transpose of a flattened map to tokens -> to_tokens."""
    layers = to_tokens(net, node)
    if layers is None:
        raise unsupported(node, "the language has no op that computes it")
    return layers


def _concat(net: Net, node: Node) -> list[Layer]:
    """A constant token put before the tokens -> class_token; else a merge."""
    layer = class_token(net, node)
    return [layer] if layer is not None else _merge(net, node)


def _add(net: Net, node: Node) -> list[Layer]:
    """Tokens plus a constant of their shape -> position_embedding; else a merge."""
    layer = position_embedding(net, node)
    return [layer] if layer is not None else _merge(net, node)


def _merge(net: Net, node: Node) -> list[Layer]:
    """Concat (of channels), Add and Mul of data values -> concat / add / mul; a Mul by a
    constant per channel -> layer_scale."""
    only_output(net, node)
    values = net.data_inputs(node)
    if node.op_type == "Mul" and len(values) == 1 and len(node.inputs) == 2:
        return [_layer_scale(net, node, values[0])]
    if len(values) != len(node.inputs):
        raise unsupported(
            node,
            f"{node.op_type} with a constant: the language's {MERGES[node.op_type]} joins data only",
        )
    ranks = {len(net.shape(v)) for v in values}
    if len(ranks) != 1:
        raise unsupported(
            node, "inputs of different ranks: the language broadcasts same-rank tensors only"
        )
    if node.op_type == "Concat" and node.attr("axis") % ranks.pop() != 1:
        raise unsupported(node, "a concatenation along another axis than the channels")
    if len(values) < 2:
        raise unsupported(node, "a join of one input: the language's merges read two or more")
    return [Layer(MERGES[node.op_type], [], values, node.outputs[0], node)]


def _layer_scale(net: Net, node: Node, x: str) -> Layer:
    """x times a constant with one value per channel -> layer_scale."""
    import numpy as np

    scale = weight(net, node, 1 if node.inputs[0] == x else 0, "scale")
    c = net.shape(x)[1]
    if scale.size != c or scale.shape not in ((c,), (c, 1, 1), (1, c, 1, 1), (1, c)):
        raise unsupported(
            node,
            f"a product with a constant of shape {list(scale.shape)}: the language scales by "
            "one value per channel (layer_scale)",
        )
    tensors = {"scale": np.ascontiguousarray(scale.reshape(-1))}
    return Layer("layer_scale", [], [x], node.outputs[0], node, tensors)


def _slice(net: Net, node: Node) -> list[Layer]:
    """A Slice of the channels that is one of equal parts -> chunk(chunks, part)."""
    x = data_input(net, node)
    if net.opset < 10:
        starts, ends, axes, steps = node.attr("starts"), node.attr("ends"), node.attr("axes"), None
    else:
        starts, ends, axes, steps = (
            net.const(v) if v else None for v in (node.inputs[1:] + ["", "", ""])[:4]
        )
    rank = len(net.shape(x))
    axes = list(range(len(starts))) if axes is None else [int(a) % rank for a in axes]
    if axes != [1] or (steps is not None and int(steps[0]) != 1):
        raise unsupported(node, "a slice of other axes than the channels, or with a step")
    channels = net.shape(x)[1]
    start, end = (
        min(max(int(v) + (channels if int(v) < 0 else 0), 0), channels)
        for v in (starts[0], ends[0])
    )
    return [chunk_layer(node, x, node.outputs[0], channels, start, end)]


def chunk_layer(node: Node, x: str, output: str, channels: int, start: int, end: int) -> Layer:
    """chunk(chunks, part) for channels start..end-1 of `channels`, when they are an equal part."""
    width = end - start
    if width <= 0 or channels % width or start % width:
        raise unsupported(
            node, f"channels {start} to {end - 1} of {channels} are not one of equal parts (chunk)"
        )
    return Layer(
        "chunk", [("", str(channels // width)), ("part", str(start // width))], [x], output, node
    )


def _split(net: Net, node: Node) -> list[Layer]:
    """Split of the channels into equal parts -> one chunk per output."""
    x = data_input(net, node)
    rank = len(net.shape(x))
    if node.attr("axis", 0) % rank != 1:
        raise unsupported(node, "a split of other axes than the channels")
    channels, layers, start = net.shape(x)[1], [], 0
    for output in node.outputs:
        width = net.shape(output)[1]
        if output and net.uses(output):
            layers.append(chunk_layer(node, x, output, channels, start, start + width))
        start += width
    return layers


RULES = {
    "Conv": conv,
    "MaxPool": pool,
    "AveragePool": pool,
    "ConvTranspose": conv_transpose,
    "ReduceMean": _reduce_mean,
    "Gemm": _gemm,
    "MatMul": _matmul,
    "BatchNormalization": _batchnorm,
    "LayerNormalization": _layernorm,
    "LRN": _lrn,
    "Clip": _clip,
    "HardSigmoid": _hard_sigmoid,
    "LeakyRelu": _leaky_relu,
    "Gelu": _gelu,
    "Softmax": _softmax,
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Transpose": _transpose,
    "Gather": token,
    "Squeeze": _flatten,
    "Concat": _concat,
    "Add": _add,
    "Mul": _merge,
    "Slice": _slice,
    "Split": _split,
    "Resize": resize_layer,
    "Upsample": resize_layer,
}
