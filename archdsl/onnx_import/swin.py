"""Swin's two ops on maps as `archdsl export` writes them. window_attention: an NCHW -> NHWC
transpose, the padding, the cyclic shift (Slice and Concat), the window partition, the qkv
projection (a MatMul by a (C, 3C) constant plus a (3C,) bias), the scores plus the relative
position bias (folded into a (1, heads, w^2, w^2) constant) and the shift mask, one Softmax,
A.V, the proj projection ((C, C) plus (C,)), the reverse, and an NHWC -> NCHW transpose.
space_to_depth: a Pad and Slices of the map concatenated on the channels. The nodes between
are not matched one by one: each subgraph is run on a random map and must compute the op with
the tensors read from it (NumPy's, in float64)."""

from __future__ import annotations

import math

from archdsl.onnx_import.evaluation import evaluated
from archdsl.onnx_import.graph import Net, Node
from archdsl.onnx_import.layers import Layer

REGION_LIMIT = 128  # nodes a window attention may have
TOLERANCE = 1e-4  # of the largest output value, float32 against float64
MASKED = -100.0  # torchvision's logit between positions of different shifted regions


def window_attention(net: Net, node: Node) -> tuple[list[Layer], list[Node]] | None:
    """The window attention ending at `node` (a Transpose back to NCHW) and the nodes it
    absorbs, or None."""
    import numpy as np

    if node.op_type != "Transpose" or node.attr("perm") != [0, 3, 1, 2]:
        return None
    found = _region(net, node)
    if found is None:
        return None
    region, entry = found
    c = net.shape(node.outputs[0])[1]
    read = _read(net, region, c)
    if read is None or not _enclosed(net, region, node):
        return None
    tensors, heads, window = read
    x = entry.inputs[0]
    maps = np.random.default_rng(0).standard_normal(net.shape(x)).astype(np.float32)
    got = evaluated(net, [*region, node], x, node.outputs[0], maps)
    shift = _shift(got, maps, tensors, heads, window) if got is not None else None
    if shift is None:
        return None
    args = [("", str(heads)), ("window", str(window))] + ([("shift", str(shift))] if shift else [])
    return [Layer("window_attention", args, [x], node.outputs[0], node, tensors)], region


def _region(net: Net, last: Node):
    """(the nodes before `last` back to an NCHW -> NHWC transpose of a map of its shape, that
    transpose), or None."""
    region, pending, entry = [], [last.inputs[0]], None
    want = net.shape(last.outputs[0])
    while pending:
        node = net.producers.get(pending.pop())
        if node is None:
            return None
        if node in region:
            continue
        region.append(node)
        if len(region) > REGION_LIMIT:
            return None
        if node.op_type == "Transpose" and node.attr("perm") == [0, 2, 3, 1]:
            if net.shape(node.inputs[0]) == want and node.inputs[0] not in net.constants:
                if entry is not None and entry is not node:
                    return None
                entry = node
                continue
        pending += net.data_inputs(node)
    return (region, entry) if entry is not None else None


def _enclosed(net: Net, region: list[Node], last: Node) -> bool:
    """Whether every value the region computes is read only inside it."""
    inside = {*region, last}
    return all(
        value != net.output and set(net.consumers.get(value, ())) <= inside
        for node in region
        for value in node.outputs
        if value
    )


def _read(net: Net, region: list[Node], c: int):
    """(torchvision's tensors, heads, window) from the region's constants, or None."""
    import numpy as np

    qkv = _projection(net, region, (c, 3 * c))
    proj = _projection(net, region, (c, c))
    softmaxes = [n for n in region if n.op_type == "Softmax"]
    if qkv is None or proj is None or len(softmaxes) != 1:
        return None
    scores = net.shape(softmaxes[0].outputs[0])
    tokens, heads = scores[-1], scores[-3] if len(scores) == 4 else 0
    window = math.isqrt(tokens)
    if window * window != tokens or not heads or c % heads:
        return None
    biases = [
        net.constants[v]
        for n in region
        if n.op_type == "Add"
        for v in n.inputs
        if v in net.constants and net.constants[v].shape == (1, heads, tokens, tokens)
    ]
    table = _table(biases[0][0], window) if len(biases) == 1 else None
    if table is None:
        return None
    tensors = {
        "qkv.weight": np.ascontiguousarray(qkv[0].T, dtype=np.float32),
        "qkv.bias": np.asarray(qkv[1], dtype=np.float32),
        "proj.weight": np.ascontiguousarray(proj[0].T, dtype=np.float32),
        "proj.bias": np.asarray(proj[1], dtype=np.float32),
        "relative_position_bias_table": table,
    }
    return tensors, heads, window


def _projection(net: Net, region: list[Node], shape: tuple[int, int]):
    """(W, b) of the one MatMul by a `shape` constant in the region followed by an Add of a
    (shape[1],) constant, or None."""
    found = []
    for node in region:
        w = net.const(node.inputs[1]) if node.op_type == "MatMul" else None
        if w is None or w.shape != shape:
            continue
        adds = [n for n in net.consumers.get(node.outputs[0], ()) if n.op_type == "Add"]
        bias = [net.constants[v] for n in adds for v in n.inputs if v in net.constants]
        if len(bias) == 1 and bias[0].shape == (shape[1],):
            found.append((w, bias[0]))
    return found[0] if len(found) == 1 else None


def relative_position_index(window: int):
    """torchvision's relative_position_index (w^4,): for query i and key j, the table row."""
    import numpy as np

    rows, columns = np.meshgrid(np.arange(window), np.arange(window), indexing="ij")
    coords = np.stack([rows.ravel(), columns.ravel()])
    offsets = (coords[:, :, None] - coords[:, None, :]).transpose(1, 2, 0) + (window - 1)
    return (offsets[:, :, 0] * (2 * window - 1) + offsets[:, :, 1]).ravel()


def _table(bias, window: int):
    """The ((2w - 1)^2, heads) table that, gathered by the index, is the (heads, w^2, w^2)
    `bias` the export folded; None when no table gathers to it."""
    import numpy as np

    heads = bias.shape[0]
    index = relative_position_index(window)
    table = np.zeros(((2 * window - 1) ** 2, heads), dtype=np.float32)
    table[index] = bias.reshape(heads, -1).T
    tokens = window * window
    again = table[index].reshape(tokens, tokens, heads).transpose(2, 0, 1)
    return table if np.array_equal(again, bias) else None


def _shift(got, maps, tensors, heads: int, window: int) -> int | None:
    """The shift with which the window attention computes `got` from `maps`, or None."""
    import numpy as np

    for shift in range(window):
        want = reference(maps.astype(np.float64), tensors, heads, window, shift)
        if got.shape == want.shape and np.abs(got - want).max() <= TOLERANCE * np.abs(want).max():
            return shift
    return None


def _padded(size: int, multiple: int) -> int:
    """`size` rounded up to a multiple of `multiple`."""
    return -(-size // multiple) * multiple


def reference(x, tensors, heads: int, window: int, shift: int):
    """torchvision's shifted window attention on an (N, C, H, W) map (NumPy)."""
    import numpy as np

    n, c, h, w = x.shape
    hp, wp = _padded(h, window), _padded(w, window)
    shifts = tuple(shift if window < size else 0 for size in (hp, wp))
    y = np.zeros((n, hp, wp, c))
    y[:, :h, :w] = x.transpose(0, 2, 3, 1)
    y = np.roll(y, (-shifts[0], -shifts[1]), axis=(1, 2))
    tiles = y.reshape(n, hp // window, window, wp // window, window, c)
    tiles = tiles.transpose(0, 1, 3, 2, 4, 5).reshape(n, -1, window * window, c)
    out = _attend(tiles, tensors, heads, window, _mask(hp, wp, window, shifts))
    out = out.reshape(n, hp // window, wp // window, window, window, c)
    out = out.transpose(0, 1, 3, 2, 4, 5).reshape(n, hp, wp, c)
    out = np.roll(out, shifts, axis=(1, 2))
    return out[:, :h, :w].transpose(0, 3, 1, 2)


def _attend(tiles, tensors, heads: int, window: int, mask):
    """Attention within each window with the position bias and the mask: (N, windows, w^2,
    C) kept."""
    import numpy as np

    n, count, tokens, c = tiles.shape
    qkv = tiles @ tensors["qkv.weight"].T.astype(np.float64) + tensors["qkv.bias"]
    q, k, v = (
        part.reshape(n, count, tokens, heads, c // heads).transpose(0, 1, 3, 2, 4)
        for part in np.split(qkv, 3, axis=-1)
    )
    index = relative_position_index(window)
    bias = tensors["relative_position_bias_table"][index].reshape(tokens, tokens, heads)
    scores = (q / math.sqrt(c // heads)) @ k.swapaxes(-1, -2) + bias.transpose(2, 0, 1)
    scores = scores + mask[None, :, None]
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    weights /= weights.sum(axis=-1, keepdims=True)
    joined = (weights @ v).transpose(0, 1, 3, 2, 4).reshape(n, count, tokens, c)
    return joined @ tensors["proj.weight"].T.astype(np.float64) + tensors["proj.bias"]


def _mask(hp: int, wp: int, window: int, shifts: tuple[int, int]):
    """torchvision's shift mask (windows, w^2, w^2): 0 within a region, MASKED across."""
    import numpy as np

    regions = np.zeros((hp, wp))
    if any(shifts):
        bands = [
            (slice(0, -window), slice(-window, -s), slice(-s, None)) if s else (slice(None),)
            for s in shifts
        ]
        count = 0
        for rows in bands[0]:
            for columns in bands[1]:
                regions[rows, columns] = count
                count += 1
    tiles = regions.reshape(hp // window, window, wp // window, window)
    tiles = tiles.transpose(0, 2, 1, 3).reshape(-1, window * window)
    differ = tiles[:, None, :] - tiles[:, :, None]
    return np.where(differ != 0, MASKED, 0.0)


def space_to_depth(net: Net, node: Node) -> tuple[list[Layer], list[Node]] | None:
    """space_to_depth(block) ending at `node` (a Concat on the channels of block^2 Slices of a
    padded map) and the nodes it absorbs, or None."""
    import numpy as np

    block = math.isqrt(len(node.inputs))
    shape = net.shape(node.outputs[0])
    if node.op_type != "Concat" or block < 2 or block * block != len(node.inputs):
        return None
    if node.attr("axis") not in (1, -3) or len(shape) != 4:
        return None
    region, pending, sources = [], list(node.inputs), set()
    while pending:
        value = pending.pop()
        producer = net.producers.get(value)
        if producer is None or producer.op_type not in ("Slice", "Pad"):
            sources.add(value)
        elif producer not in region:
            region.append(producer)
            pending += net.data_inputs(producer)
    if len(sources) != 1 or not region or not _enclosed(net, region, node):
        return None
    (x,) = sources
    if x in net.constants or len(net.shape(x)) != 4:
        return None
    maps = np.random.default_rng(0).standard_normal(net.shape(x)).astype(np.float32)
    got = evaluated(net, [*region, node], x, node.outputs[0], maps)
    want = _gathered(maps, block)
    if got is None or got.shape != want.shape or not np.array_equal(got, want):
        return None
    args = [("", str(block))] if block != 2 else []
    return [Layer("space_to_depth", args, [x], node.outputs[0], node)], region


def _gathered(maps, block: int):
    """Each block x block patch's pixels stacked on the channels, offsets row first."""
    import numpy as np

    n, c, h, w = maps.shape
    padded = np.zeros((n, c, _padded(h, block), _padded(w, block)), dtype=maps.dtype)
    padded[:, :, :h, :w] = maps
    parts = [padded[:, :, dy::block, dx::block] for dx in range(block) for dy in range(block)]
    return np.concatenate(parts, axis=1)
