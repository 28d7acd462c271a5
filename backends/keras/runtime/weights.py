"""Portable weights for Keras models: save_weights / load_weights (layout: portable.py).

Keras layer `statement.op` holds the tensors `statement.op.param` of the portable file:
- Conv2D kernel (kh, kw, in / groups, filters) <-> weight (filters, in / groups, kh, kw); bias.
- DepthwiseConv2D kernel (kh, kw, C, m) <-> weight (C * m, 1, kh, kw) (a conv with groups=C,
  output channel c * m + j being channel c's filter j); bias.
- ConvTranspose2D (layers.py) kernel (kh, kw, filters / groups, in) <-> weight (in,
  filters / groups, kh, kw), PyTorch's ConvTranspose2d layout; bias.
- Dense kernel (inputs, units) <-> weight (units, inputs); bias. Keras's Flatten orders a map's
  features H, W, C, the portable layout C, H, W: the inputs of a dense layer fed (through
  feature-wise layers such as dropout, activations or batch norm, and concatenations) by a
  Flatten of an H x W x C map are permuted, with the permutation read from the model itself.
  (Where the order would be observable, in an output or an elementwise merge, the generated
  model flattens with the runtime's FlattenCHW, whose features are in the portable order.)
- BatchNormalization gamma, beta, moving_mean, moving_variance <-> weight, bias, running_mean,
  running_var (permuted as a dense layer's inputs when fed by a Flatten).
- LayerNormalization gamma, beta <-> weight, bias; LayerScale scale <-> scale (C,) (permuted
  likewise).
- ShiftedWindowAttention (shifted_windows.py) qkv_weight, qkv_bias, proj_weight, proj_bias,
  relative_position_bias_table <-> qkv.weight, qkv.bias, proj.weight, proj.bias,
  relative_position_bias_table, held in the portable layout.
- ClassToken token (1, 1, D), PositionEmbedding embedding (1, L, D) and SelfAttention
  in_proj_weight (3D, D), in_proj_bias (3D,), out_proj_weight / out_proj_bias <->
  out_proj.weight (D, D) / out_proj.bias (D,) (token_layers.py): held in the portable
  layout, copied as they are.
- Embedding embeddings (vocab, dim) <-> weight (vocab, dim).
- Recurrent (sequence.py), per layer k and direction (suffix '' or '_reverse'), PyTorch's
  nn.LSTM / nn.GRU tensors: weight_ih_lk (gates * units, in) <-> the cell's kernel (in,
  gates * units) transposed; weight_hh_lk <-> recurrent_kernel likewise. LSTM: Keras's
  gates i, f, c, o are PyTorch's i, f, g, o; bias_ih_lk <-> bias, bias_hh_lk <->
  recurrent_bias. GRU: Keras's gates z, r, h are PyTorch's z, r, n reordered to r, z, n;
  Keras's bias (2, 3 * units) holds bias_ih_lk (row 0) and bias_hh_lk (row 1), reordered.
"""

from collections.abc import Callable
from typing import NamedTuple

import keras
import numpy as np

# the runtime beside this file (isort: split keeps one order wherever ruff runs)
# isort: split
from portable import WeightsError, check_arrays, read_npz, write_npz

# isort: split
from layers import ConvTranspose2D, Gelu, LayerScale, StochasticDepth
from sequence import Recurrent
from token_layers import ClassToken, PositionEmbedding, SelfAttention

# isort: split
from shifted_windows import ShiftedWindowAttention

__all__ = [
    "Entry",
    "WeightsError",
    "flatten_orders",
    "flatten_permutation",
    "from_portable_features",
    "layer_entries",
    "layer_node",
    "load_arrays",
    "load_weights",
    "output_orders",
    "portable_variables",
    "save_weights",
    "state_arrays",
    "to_portable_features",
]

# layers that keep each feature where it is (softmax is permutation-equivariant): a flatten
# order passes through them
FEATURE_WISE = (
    keras.layers.Dropout,
    keras.layers.ReLU,
    keras.layers.Activation,
    keras.layers.LeakyReLU,
    keras.layers.Softmax,
    keras.layers.BatchNormalization,
    keras.layers.LayerNormalization,
    keras.layers.Identity,
    Gelu,
    LayerScale,
    StochasticDepth,
)
MERGES = (
    keras.layers.Add,
    keras.layers.Subtract,
    keras.layers.Multiply,
    keras.layers.Maximum,
)
BATCHNORM = (
    ("weight", "gamma"),
    ("bias", "beta"),
    ("running_mean", "moving_mean"),
    ("running_var", "moving_variance"),
)
# per-channel vectors of the other layers, and variables the runtime's layers hold in the
# portable layout already: (layer class, ((portable name, attribute), ...))
PER_CHANNEL = (
    (keras.layers.LayerNormalization, (("weight", "gamma"), ("bias", "beta"))),
    (LayerScale, (("scale", "scale"),)),
    (
        ShiftedWindowAttention,
        (
            ("qkv.weight", "qkv_weight"),
            ("qkv.bias", "qkv_bias"),
            ("proj.weight", "proj_weight"),
            ("proj.bias", "proj_bias"),
            ("relative_position_bias_table", "relative_position_bias_table"),
        ),
    ),
)
# tensors of the token layers, held in the portable layout (no flatten order reaches them)
AS_HELD = (
    (ClassToken, (("token", "token"),)),
    (PositionEmbedding, (("embedding", "embedding"),)),
    (
        SelfAttention,
        (
            ("in_proj_weight", "in_proj_weight"),
            ("in_proj_bias", "in_proj_bias"),
            ("out_proj.weight", "out_proj_weight"),
            ("out_proj.bias", "out_proj_bias"),
        ),
    ),
)


def flatten_permutation(h, w, c):
    """perm[k]: the portable (C, H, W order) index of feature k of Keras's H, W, C flatten."""
    return np.arange(h * w * c).reshape(c, h, w).transpose(1, 2, 0).reshape(-1)


def to_portable_features(values, order, axis=-1):
    """Features along `axis` in Keras's `order` (a permutation, or None: the portable order
    already) put in the portable order."""
    if order is None:
        return np.asarray(values)
    return np.take(np.asarray(values), np.argsort(order), axis=axis)


def from_portable_features(values, order, axis=-1):
    """The inverse of to_portable_features: portable features put in Keras's `order`."""
    if order is None:
        return np.asarray(values)
    return np.take(np.asarray(values), order, axis=axis)


def layer_node(model, layer):
    """The layer's only call in the model's graph (generated models call every layer once;
    a layer of a nested model reloaded from a .keras file also holds a call of its own)."""
    graph = getattr(model, "_functional", None) or model  # a Sequential's graph
    nodes = [
        node
        for index, node in enumerate(layer._inbound_nodes)
        if f"{id(layer)}_ib-{index}" in graph._nodes  # Keras's key of a node in a graph
    ]
    if len(nodes) != 1:
        raise WeightsError(
            f"layer {layer.name} is called {len(nodes)} times; expected once"
        )
    return nodes[0]


def _flatten_order(shape):
    """The order of Flatten's output: None for a vector or a trivial map (H * W = 1 or C = 1),
    whose orders agree, else the permutation of an H x W x C map."""
    if len(shape) != 3 or shape[0] * shape[1] == 1 or shape[2] == 1:
        return None
    return flatten_permutation(*shape)


def _concat_order(orders, tensors):
    """The order of a Concatenate of vectors: each input's order, offset by the features
    before it (None when every input is in the portable order)."""
    if all(o is None for o in orders):
        return None
    parts, offset = [], 0
    for order, tensor in zip(orders, tensors, strict=True):
        size = tensor.shape[-1]
        parts.append((np.arange(size) if order is None else order) + offset)
        offset += size
    return np.concatenate(parts)


def _same(orders):
    """Whether every order is the same (all None, or equal permutations)."""
    first = orders[0] if orders else None
    return all(
        (o is None and first is None)
        or (o is not None and first is not None and np.array_equal(o, first))
        for o in orders
    )


def _orders(model):
    """({layer: order of its input features}, {layer: order of its output}), an order being
    the permutation from Keras's features to the portable ones, or None where they agree."""
    inputs_of, outputs_of, by_tensor = {}, {}, {}
    for layer in model.layers:
        node = layer_node(model, layer)
        inputs = [by_tensor.get(id(t)) for t in node.input_tensors]
        permuted = any(o is not None for o in inputs)
        if len(inputs) == 1 and permuted:
            inputs_of[layer.name] = inputs[0]
        out = None
        if isinstance(layer, keras.layers.Flatten):
            shape = tuple(node.input_tensors[0].shape[1:])
            out = _flatten_order(shape) if len(shape) == 3 else inputs[0]
        elif isinstance(layer, keras.layers.Concatenate):
            out = _concat_order(inputs, node.input_tensors)
        elif isinstance(layer, FEATURE_WISE) or (
            isinstance(layer, MERGES) and _same(inputs)
        ):
            out = inputs[0] if inputs else None
        elif permuted and not isinstance(layer, keras.layers.Dense):
            raise WeightsError(
                f"layer {layer.name} ({type(layer).__name__}) mixes the features of a flattened "
                "map, whose order differs between Keras (H, W, C) and the portable file (C, H, W)"
            )
        outputs_of[layer.name] = out
        for t in node.output_tensors:
            by_tensor[id(t)] = out
    return inputs_of, outputs_of


def flatten_orders(model):
    """{layer name: order} for every layer whose input features are not in the portable order.

    Follows each Flatten of a spatial map through feature-wise layers and concatenations; a
    layer that mixes features (Dense) ends the order.
    """
    return _orders(model)[0]


def output_orders(model):
    """{layer name: order or None}: the feature order of each layer's output."""
    return _orders(model)[1]


def _conv_out(kernel):
    return np.transpose(kernel, (3, 2, 0, 1))


def _conv_in(weight):
    return np.transpose(weight, (2, 3, 1, 0))


def _depthwise(channels, multiplier):
    """(to portable, from portable) for a depthwise kernel (kh, kw, C, m), whose output
    channel c * m + j is input channel c's filter j: the portable (C * m, 1, kh, kw)."""

    def out(kernel):
        kh, kw = kernel.shape[:2]
        return np.transpose(kernel, (2, 3, 0, 1)).reshape(-1, 1, kh, kw)

    def into(weight):
        kh, kw = weight.shape[2:]
        return np.transpose(
            np.reshape(weight, (channels, multiplier, kh, kw)), (2, 3, 0, 1)
        )

    return out, into


def _dense(order):
    """(to portable, from portable) for a dense kernel whose inputs come in `order`."""

    def out(kernel):
        return np.transpose(to_portable_features(kernel, order, axis=0))

    def into(weight):
        return from_portable_features(np.transpose(weight), order, axis=0)

    return out, into


def _vector(order):
    """(to portable, from portable) for a per-feature vector whose features come in `order`."""
    return (
        lambda v: to_portable_features(v, order),
        lambda v: from_portable_features(v, order),
    )


class Entry(NamedTuple):
    """One tensor: its portable name and shape, the Keras variable, and the conversions."""

    name: str
    variable: object
    to_portable: Callable  # the variable's value (or its gradient) -> portable layout
    from_portable: Callable  # portable layout -> a value for the variable
    shape: tuple


def _entry(name, variable, convert, shape=None):
    shape = tuple(variable.shape) if shape is None else shape
    return Entry(name, variable, *convert, shape)


def portable_variables(model):
    """[Entry] for every variable of the model, in layer order."""
    orders = flatten_orders(model)
    entries = []
    for layer in model.layers:
        if layer.weights:
            entries += layer_entries(layer, orders.get(layer.name))
    return entries


def layer_entries(layer, order=None):
    """[Entry] for one layer's variables, named `layer.name.param`; `order` is the order of
    its input features (flatten_orders) or None."""
    name = layer.name
    if isinstance(layer, (keras.layers.Conv2D, ConvTranspose2D)):
        # (kh, kw, a, b) <-> (b, a, kh, kw): a conv's (filters, in / groups, kh, kw),
        # a transposed conv's (in, filters / groups, kh, kw)
        kh, kw, per_group, filters = layer.kernel.shape
        weight = _entry(
            f"{name}.weight",
            layer.kernel,
            (_conv_out, _conv_in),
            (filters, per_group, kh, kw),
        )
        return [weight, *_bias(layer)]
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        kh, kw, channels, multiplier = layer.kernel.shape
        weight = _entry(
            f"{name}.weight",
            layer.kernel,
            _depthwise(channels, multiplier),
            (channels * multiplier, 1, kh, kw),
        )
        return [weight, *_bias(layer)]
    if isinstance(layer, keras.layers.Dense):
        shape = tuple(reversed(layer.kernel.shape))
        return [
            _entry(f"{name}.weight", layer.kernel, _dense(order), shape),
            *_bias(layer),
        ]
    if isinstance(layer, keras.layers.BatchNormalization):
        return _vectors(name, layer, BATCHNORM, order)
    if isinstance(layer, keras.layers.Embedding):
        return [_entry(f"{name}.weight", layer.embeddings, _vector(None))]
    if isinstance(layer, Recurrent):
        return _recurrent_entries(name, layer)
    if per_channel := _per_channel(layer):
        return _vectors(name, layer, per_channel, order)
    raise WeightsError(
        f"layer {name} ({type(layer).__name__}) has weights but no portable layout"
    )


def _bias(layer):
    """[Entry] for a conv's or dense layer's bias, or [] without one."""
    if not layer.use_bias:
        return []
    return [_entry(f"{layer.name}.bias", layer.bias, _vector(None))]


def _gate_order(kind, units):
    """The permutation from Keras's gate blocks to PyTorch's: LSTM i, f, c, o = i, f, g, o;
    GRU z, r, h -> r, z, n (applied to itself it is its own inverse)."""
    blocks = [0, 1, 2, 3] if kind == "lstm" else [1, 0, 2]
    return np.concatenate([np.arange(b * units, (b + 1) * units) for b in blocks])


def _matrix(order):
    """(to portable, from portable) for a kernel (in, gates * units) in Keras's gate order."""
    return (
        lambda kernel: np.transpose(np.take(kernel, order, axis=-1)),
        lambda weight: np.take(np.transpose(weight), order, axis=-1),
    )


def _bias_row(variable, row, order):
    """(to portable, from portable) for row `row` of a GRU's (2, 3 * units) bias; loading
    one row keeps the other as the variable holds it."""

    def into(value):
        whole = np.array(keras.ops.convert_to_numpy(variable))
        whole[row] = np.take(value, order)
        return whole

    return (lambda bias: np.take(np.asarray(bias)[row], order), into)


def _recurrent_entries(name, layer):
    """[Entry] of a Recurrent stack in PyTorch's names, layouts and gate order."""
    entries = []
    units = layer.units
    order = _gate_order(layer.kind, units)
    rows = len(order)
    for k in range(layer.layers):
        for suffix, cell in layer.directions(k):
            tag = f"l{k}{suffix}"
            kernel, recurrent = cell.kernel, cell.recurrent_kernel
            entries += [
                _entry(
                    f"{name}.weight_ih_{tag}",
                    kernel,
                    _matrix(order),
                    (rows, kernel.shape[0]),
                ),
                _entry(
                    f"{name}.weight_hh_{tag}", recurrent, _matrix(order), (rows, units)
                ),
            ]
            if not layer.use_bias:
                continue
            if layer.kind == "lstm":
                biases = [
                    (cell.bias, _vector(None)),
                    (cell.recurrent_bias, _vector(None)),
                ]
            else:
                biases = [(cell.bias, _bias_row(cell.bias, r, order)) for r in (0, 1)]
            for which, (variable, convert) in zip(("ih", "hh"), biases, strict=True):
                entries.append(
                    _entry(f"{name}.bias_{which}_{tag}", variable, convert, (rows,))
                )
    return entries


def _per_channel(layer):
    """The (portable name, attribute) pairs of a layer of PER_CHANNEL or AS_HELD, or ()."""
    return next(
        (pairs for cls, pairs in PER_CHANNEL + AS_HELD if isinstance(layer, cls)), ()
    )


def _vectors(name, layer, pairs, order):
    """[Entry] for a layer's per-channel variables (those it has) named as `pairs` say."""
    variables = ((portable, getattr(layer, attr, None)) for portable, attr in pairs)
    return [
        _entry(f"{name}.{portable}", variable, _vector(order))
        for portable, variable in variables
        if variable is not None
    ]


def state_arrays(model):
    """{portable name: float32 array}: the model's tensors in the portable layout."""
    return {
        e.name: np.asarray(
            e.to_portable(keras.ops.convert_to_numpy(e.variable)), np.float32
        )
        for e in portable_variables(model)
    }


def save_weights(model, path):
    """Write the model's weights to `path` (.npz) in the portable layout."""
    write_npz(path, state_arrays(model))


def load_arrays(model, arrays, source="the arrays", keep=()):
    """Assign {portable name: array} to the model; strict: every tensor (but those named in
    keep, left as they are) and nothing else."""
    entries = [e for e in portable_variables(model) if e.name not in keep]
    expected = {e.name: e.shape for e in entries}
    check_arrays(expected, {n: np.shape(a) for n, a in arrays.items()}, source)
    for e in entries:
        value = e.from_portable(np.asarray(arrays[e.name]))
        e.variable.assign(np.asarray(value, dtype=e.variable.dtype))
    return model


def load_weights(model, path):
    """Load a portable .npz (written by either backend) into the model; WeightsError if it
    does not fit (the message names every missing, extra and wrongly shaped tensor) or is
    not a plain .npz of arrays, found from its headers before any array is read."""
    expected = {e.name: e.shape for e in portable_variables(model)}
    return load_arrays(model, read_npz(path, expected), str(path))
