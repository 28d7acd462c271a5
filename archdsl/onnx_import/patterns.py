"""Ops that exporters write as several ONNX nodes (SiLU as x * sigmoid(x), LRN as a pooled
square, ...): each pattern is matched at its last node and absorbs the nodes before it, which
must be read by nothing else."""

from __future__ import annotations

import math
from dataclasses import dataclass

from archdsl.onnx_import.attention import attention
from archdsl.onnx_import.convert import dense_layer, layernorm_layer, lrn_layer, paper_alpha
from archdsl.onnx_import.graph import Net, Node
from archdsl.onnx_import.layers import Layer
from archdsl.onnx_import.reading import weight
from archdsl.onnx_import.resizing import nearest_layer
from archdsl.onnx_import.swin import space_to_depth, window_attention
from archdsl.onnx_import.tokens import to_map
from archdsl.onnx_import.windows import conv, pool


@dataclass
class Match:
    """The layers a pattern computes and the nodes it absorbs (besides the one it ends at)."""

    layers: list[Layer]
    absorbed: list[Node]


def matches(net: Net) -> tuple[dict[Node, list[Layer]], set[Node]]:
    """{last node: its layers} of every pattern found, and every node they absorb."""
    found, absorbed = {}, set()
    for node in reversed(net.nodes):
        if node in absorbed or node.domain != "":
            continue
        for pattern in PATTERNS.get(node.op_type, ()):
            match = pattern(net, node)
            if match is not None and not absorbed.intersection(match.absorbed):
                found[node] = match.layers
                absorbed.update(match.absorbed)
                break
    return found, absorbed


def _operands(net: Net, node: Node) -> tuple[str, str] | None:
    """The two inputs of a binary node (None for another arity)."""
    return (node.inputs[0], node.inputs[1]) if len(node.inputs) == 2 else None


def _with_constant(net: Net, node: Node | None, value: float) -> str | None:
    """For a binary node of which one input is the scalar constant `value` (within 1e-6), the
    other input; else None."""
    if node is None or len(node.inputs) != 2:
        return None
    for mine, other in (node.inputs, node.inputs[::-1]):
        scalar = net.scalar(other)
        if scalar is not None and abs(scalar - value) <= 1e-6 * max(1.0, abs(value)):
            return mine
    return None


def _scalar_operand(net: Net, node: Node | None) -> tuple[str, float] | None:
    """(the data input, the scalar) of a binary node with one scalar constant input."""
    if node is None or len(node.inputs) != 2:
        return None
    for mine, other in (node.inputs, node.inputs[::-1]):
        scalar = net.scalar(other)
        if scalar is not None and mine not in net.constants:
            return mine, scalar
    return None


# ----------------------------------------------------------------------------- activations


def _gated(net: Net, node: Node, inner_type: str, chain: tuple[str, ...] = ()):
    """x * f(x), f an `inner_type` node (after the nodes `chain`, outermost first) reading x:
    (x, the absorbed nodes) or None."""
    pair = _operands(net, node)
    if pair is None:
        return None
    for x, gate in (pair, pair[::-1]):
        absorbed, value = [], gate
        for op_type in (*chain, inner_type):
            inner = net.inner(value, op_type)
            if inner is None or len(inner.inputs) < 1:
                break
            absorbed.append(inner)
            value = inner.inputs[0]
        else:
            if value == x and x not in net.constants:
                return x, absorbed
    return None


def _activation(op: str, inner_type: str, chain: tuple[str, ...] = (), check=None):
    """A pattern x * f(x) -> `op`."""

    def pattern(net: Net, node: Node) -> Match | None:
        found = _gated(net, node, inner_type, chain)
        if found is None or (check and not check(net, found[1][-1])):
            return None
        return Match([Layer(op, [], [found[0]], node.outputs[0], node)], found[1])

    return pattern


def _pytorch_hard_sigmoid(net: Net, node: Node) -> bool:
    """HardSigmoid with PyTorch's alpha 1/6 and beta 0.5."""
    return abs(node.attr("alpha", 0.2) - 1 / 6) <= 1e-6 and node.attr("beta", 0.5) == 0.5


def _half_x_one_plus(net: Net, node: Node, op: str):
    """(x, [the Mul and Add nodes], the `op` node) for each reading of `node` as
    0.5 * (x * (1 + op(...))), the frame both GELU forms share."""
    product = net.inner(_with_constant(net, node, 0.5) or "", "Mul")
    pair = _operands(net, product) if product else None
    for x, rest in (pair, pair[::-1]) if pair else ():
        plus = net.inner(rest, "Add")
        inner = net.inner(_with_constant(net, plus, 1.0) or "", op)
        if inner is not None:
            yield x, [product, plus], inner


def _gelu_erf(net: Net, node: Node) -> Match | None:
    """0.5 * (x * (1 + erf(x / sqrt 2))) -> gelu (as torch.onnx writes it)."""
    for x, frame, erf in _half_x_one_plus(net, node, "Erf"):
        divide = net.inner(erf.inputs[0], "Div")
        if divide and _with_constant(net, divide, math.sqrt(2.0)) == x and divide.inputs[0] == x:
            return Match([Layer("gelu", [], [x], node.outputs[0], node)], [*frame, erf, divide])
    return None


def _gelu_tanh(net: Net, node: Node) -> Match | None:
    """0.5 * (x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)))) -> gelu(approximate=tanh)."""
    for x, frame, tanh in _half_x_one_plus(net, node, "Tanh"):
        scaled = net.inner(tanh.inputs[0], "Mul")
        inner_sum = net.inner(_with_constant(net, scaled, math.sqrt(2 / math.pi)) or "", "Add")
        if inner_sum is None or x not in inner_sum.inputs:
            continue
        cube_term = net.inner(
            inner_sum.inputs[1] if inner_sum.inputs[0] == x else inner_sum.inputs[0], "Mul"
        )
        cube = net.inner(_with_constant(net, cube_term, 0.044715) or "", "Mul")
        square = _cube_of(net, cube, x)
        if square is not None:
            absorbed = [*frame, tanh, scaled, inner_sum, cube_term, cube, square]
            layer = Layer("gelu", [("approximate", "tanh")], [x], node.outputs[0], node)
            return Match([layer], absorbed)
    return None


def _cube_of(net: Net, cube: Node | None, x: str) -> Node | None:
    """The x * x node when `cube` is x * (x * x) (either order), else None."""
    if cube is None or x not in cube.inputs:
        return None
    other = cube.inputs[1] if cube.inputs[0] == x else cube.inputs[0]
    square = net.inner(other, "Mul")
    return square if square is not None and square.inputs == [x, x] else None


# ----------------------------------------------------------------------------- normalisation


def _lrn(net: Net, node: Node) -> Match | None:
    """x / (k + alpha * avgpool_channels(x^2))^beta (torch.onnx's LocalResponseNorm) -> lrn."""
    if len(node.inputs) != 2:
        return None
    x, denominator = node.inputs
    power = net.inner(denominator, "Pow")
    found = _scalar_operand(net, net.inner(power.inputs[0], "Add")) if power else None
    beta = net.scalar(power.inputs[1]) if power else None
    if found is None or beta is None:
        return None
    plus = net.producers[power.inputs[0]]
    scaled_value, k = found
    scaled = net.inner(scaled_value, "Mul")
    alpha_found = _scalar_operand(net, scaled)
    if alpha_found is None:
        return None
    absorbed, value = [power, plus, scaled], alpha_found[0]
    while (
        step := net.inner(value, "Reshape", "Squeeze", "Unsqueeze", "Pad", "AveragePool")
    ) is not None:
        absorbed.append(step)
        value = step.inputs[0]
    square = net.inner(value, "Mul")
    pooled = [n for n in absorbed if n.op_type == "AveragePool"]
    if square is None or square.inputs != [x, x] or len(pooled) != 1:
        return None
    size = max(pooled[0].attr("kernel_shape"))
    if size % 2 == 0:
        return None
    alpha = paper_alpha(alpha_found[1], size)  # the pool averages: alpha multiplies the sum
    return Match([lrn_layer(net, node, size, alpha, beta, k, x)], [*absorbed, square])


def _layernorm_of_channels(net: Net, node: Node) -> Match | None:
    """NCHW -> NHWC, LayerNormalization over the last axis, back to NCHW -> layernorm."""
    if node.attr("perm") != [0, 3, 1, 2]:
        return None
    norm = net.inner(node.inputs[0], "LayerNormalization")
    before = net.inner(norm.inputs[0], "Transpose") if norm else None
    if (
        before is None
        or before.attr("perm") != [0, 2, 3, 1]
        or norm.attr("axis", -1) not in (-1, 3)
    ):
        return None
    return Match([layernorm_layer(net, norm, before.inputs[0], node.outputs[0])], [norm, before])


# ----------------------------------------------------------------------------- shaping


def _channel_shuffle(net: Net, node: Node) -> Match | None:
    """Reshape to (N, g, C/g, H, W), swap axes 1 and 2, reshape back -> channel_shuffle(g)."""
    swap = net.inner(node.inputs[0], "Transpose")
    split = net.inner(swap.inputs[0], "Reshape") if swap else None
    if split is None or swap.attr("perm") != [0, 2, 1, 3, 4]:
        return None
    grouped, x = net.shape(split.outputs[0]), split.inputs[0]
    if net.shape(x) != net.shape(node.outputs[0]) or len(grouped) != 5:
        return None
    n, c, h, w = net.shape(x)
    if grouped != (n, grouped[1], c // grouped[1], h, w):
        return None
    layer = Layer("channel_shuffle", [("", str(grouped[1]))], [x], node.outputs[0], node)
    return Match([layer], [swap, split])


def _adaptive_pool(net: Net, node: Node) -> Match | None:
    """Means over PyTorch's adaptive bins along H, concatenated, then along W -> adaptive_avgpool
    (the bins torch.onnx writes for AdaptiveAvgPool2d)."""
    columns = _bins(net, node, 3)
    rows = _bins(net, net.producers.get(columns[0]), 2) if columns else None
    if rows is None or not _only_read_by(net, columns[0], columns[2]):
        return None
    size = (
        f"{len(rows[1])} x {len(columns[1])}"
        if len(rows[1]) != len(columns[1])
        else str(len(rows[1]))
    )
    layer = Layer("adaptive_avgpool", [("", size)], [rows[0]], node.outputs[0], node)
    return Match([layer], [*columns[2], net.producers[columns[0]], *rows[2]])


def _bins(net: Net, node: Node | None, axis: int):
    """For a Concat along `axis` of means of slices of one value x that are PyTorch's adaptive
    bins: (x, the bins, the Slice and ReduceMean nodes); else None."""
    if node is None or node.op_type != "Concat" or node.attr("axis") != axis:
        return None
    sources, bins, absorbed = set(), [], []
    for value in node.inputs:
        mean = net.inner(value, "ReduceMean")
        cut = net.producers.get(mean.inputs[0]) if mean else None
        if cut is None or cut.op_type != "Slice" or net.uses(cut.outputs[0]) != 1:
            return None
        axes = (
            mean.attr("axes")
            if mean.attr("axes") is not None
            else net.const(mean.inputs[1] if len(mean.inputs) > 1 else "")
        )
        bounds = [net.const(v) for v in cut.inputs[1:4]] if len(cut.inputs) >= 4 else None
        if (
            axes is None
            or list(axes) != [axis]
            or not mean.attr("keepdims", 1)
            or bounds is None
            or None in [b for b in bounds]
        ):
            return None
        if [int(a) for a in bounds[2]] != [axis] or (len(cut.inputs) > 4 and cut.inputs[4]):
            return None
        sources.add(cut.inputs[0])
        bins.append((int(bounds[0][0]), int(bounds[1][0])))
        absorbed += [mean, cut]
    if len(sources) != 1:
        return None
    x = sources.pop()
    length, n = net.shape(x)[axis], len(bins)
    if bins != [(i * length // n, -(-(i + 1) * length // n)) for i in range(n)]:
        return None
    return x, bins, absorbed


def _only_read_by(net: Net, value: str, nodes: list[Node]) -> bool:
    """Whether `value` is read by these nodes and by nothing else."""
    return value != net.output and set(net.consumers.get(value, ())) <= set(nodes)


def _nearest_gather(net: Net, node: Node) -> Match | None:
    """Gather of rows, then of columns, by constant indices -> upsample or resize(nearest)."""
    rows_node = net.inner(node.inputs[0], "Gather")
    if rows_node is None or node.attr("axis") != 3 or rows_node.attr("axis") != 2:
        return None
    rows, cols = net.const(rows_node.inputs[1]), net.const(node.inputs[1])
    x = rows_node.inputs[0]
    if rows is None or cols is None or rows.ndim != 1 or cols.ndim != 1 or len(net.shape(x)) != 4:
        return None
    size = net.shape(x)[2:]
    out = (len(rows), len(cols))
    rows = [int(i) % size[0] for i in rows]
    cols = [int(i) % size[1] for i in cols]
    return Match([nearest_layer(node, x, node.outputs[0], size, out, rows, cols)], [rows_node])


# ----------------------------------------------------------------------------- folded pieces


def _padded_window(net: Net, node: Node) -> Match | None:
    """Pad (zeros; -inf before a max pool) of H and W, then a conv or pool -> its padding."""
    pad = net.inner(node.inputs[0], "Pad")
    if pad is None or pad.attr("mode", "constant") != "constant":
        return None
    pads = pad.attr("pads") if net.opset < 11 else net.const(pad.inputs[1])
    fill = (
        pad.attr("value", 0.0)
        if net.opset < 11
        else (net.scalar(pad.inputs[2]) if len(pad.inputs) > 2 and pad.inputs[2] else 0.0)
    )
    if (
        pads is None
        or len(pads) != 8
        or any(int(p) for i, p in enumerate(pads) if i % 4 < 2)
        or (len(pad.inputs) > 3 and pad.inputs[3])
    ):
        return None
    wanted = -math.inf if node.op_type == "MaxPool" else 0.0
    own = any(node.attr("pads", [0])) or node.attr("auto_pad", "NOTSET") not in ("NOTSET", "VALID")
    uncounted = node.op_type == "AveragePool" and not node.attr("count_include_pad", 0)
    if fill != wanted or (own and uncounted):  # zeros padded before count; its own do not
        return None
    extra = [int(pads[2]), int(pads[3]), int(pads[6]), int(pads[7])]
    window = conv if node.op_type == "Conv" else pool
    return Match(window(net, node, pad.inputs[0], extra), [pad])


def _dense_bias(net: Net, node: Node) -> Match | None:
    """MatMul by a constant matrix, plus a constant vector -> dense with a bias."""
    import numpy as np

    found = None
    for value, other in (node.inputs, node.inputs[::-1]) if len(node.inputs) == 2 else ():
        product = net.inner(value, "MatMul")
        if (
            product is not None
            and net.const(other) is not None
            and net.const(product.inputs[1]) is not None
        ):
            found = product, other
    if found is None:
        return None
    product, bias_value = found
    w = weight(net, product, 1, "weight")
    x = product.inputs[0]
    if w.ndim != 2 or x in net.constants or len(net.shape(x)) not in (2, 3):
        return None
    bias = np.asarray(net.const(bias_value), dtype=np.float32)
    if bias.size not in (1, w.shape[1]) or bias.ndim > 2:
        return None
    bias = np.broadcast_to(bias.reshape(-1), (w.shape[1],)).copy()
    return Match(
        [dense_layer(product, x, node.outputs[0], np.ascontiguousarray(w.T), bias)], [product]
    )


# ----------------------------------------------------------------------------- token sequences


def _attention(net: Net, node: Node) -> Match | None:
    """In-projection, heads, Softmax, out-projection -> attention(heads) (attention.py)."""
    found = attention(net, node)
    return Match(*found) if found is not None else None


def _window_attention(net: Net, node: Node) -> Match | None:
    """Pad, shift, windows, qkv, biased and masked Softmax, proj, back -> window_attention
    (swin.py)."""
    found = window_attention(net, node)
    return Match(*found) if found is not None else None


def _space_to_depth(net: Net, node: Node) -> Match | None:
    """Slices of a padded map concatenated on the channels -> space_to_depth (swin.py)."""
    found = space_to_depth(net, node)
    return Match(*found) if found is not None else None


def _to_map(net: Net, node: Node) -> Match | None:
    """Tokens (or a flattened map) reshaped to a map -> to_map(H, W) (tokens.py)."""
    found = to_map(net, node)
    return Match(*found) if found is not None else None


PATTERNS = {
    "Mul": (
        _activation("silu", "Sigmoid"),
        _activation("mish", "Softplus", ("Tanh",)),
        _activation("hardswish", "HardSigmoid", check=_pytorch_hard_sigmoid),
        _gelu_erf,
        _gelu_tanh,
    ),
    "Div": (_lrn,),
    "Transpose": (_layernorm_of_channels, _window_attention, _attention),
    "Reshape": (_channel_shuffle, _to_map, _attention),
    "MatMul": (_attention,),
    "Concat": (_adaptive_pool, _space_to_depth),
    "Gather": (_nearest_gather,),
    "Conv": (_padded_window,),
    "MaxPool": (_padded_window,),
    "AveragePool": (_padded_window,),
    "Add": (_attention, _dense_bias),
}
