"""Portable weights for Keras models: save_weights / load_weights (layout: portable.py).

Keras layer `statement.op` holds the tensors `statement.op.param` of the portable file:
- Conv2D kernel (kh, kw, in / groups, filters) <-> weight (filters, in / groups, kh, kw); bias.
- Dense kernel (inputs, units) <-> weight (units, inputs); bias. Keras flattens a map in H, W, C
  order, the portable layout in C, H, W order: the inputs of a dense layer fed (through
  feature-wise layers such as dropout, activations or batch norm) by a Flatten of an H x W x C
  map are permuted, with the map's shape read from the model itself.
- BatchNormalization gamma, beta, moving_mean, moving_variance <-> weight, bias, running_mean,
  running_var (permuted as a dense layer's inputs when fed by a Flatten).
"""

from collections.abc import Callable
from typing import NamedTuple

import keras
import numpy as np

# the runtime beside this file (isort: split keeps one order wherever ruff runs)
# isort: split
from portable import WeightsError, check_arrays, read_npz, write_npz

__all__ = [
    "Entry",
    "WeightsError",
    "chw_to_hwc",
    "flatten_orders",
    "hwc_to_chw",
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
    keras.layers.Identity,
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


def hwc_to_chw(values, order, axis=-1):
    """Features along `axis` flattened from an (H, W, C) = `order` map, put in C, H, W order."""
    if order is None:
        return np.asarray(values)
    values = np.moveaxis(np.asarray(values), axis, -1)
    h, w, c = order
    lead = values.shape[:-1]
    chw = values.reshape(*lead, h, w, c).transpose(*range(len(lead)), -1, -3, -2)
    return np.moveaxis(chw.reshape(*lead, h * w * c), -1, axis)


def chw_to_hwc(values, order, axis=-1):
    """The inverse of hwc_to_chw: features in C, H, W order put in Keras's H, W, C order."""
    if order is None:
        return np.asarray(values)
    values = np.moveaxis(np.asarray(values), axis, -1)
    h, w, c = order
    lead = values.shape[:-1]
    hwc = values.reshape(*lead, c, h, w).transpose(*range(len(lead)), -2, -1, -3)
    return np.moveaxis(hwc.reshape(*lead, h * w * c), -1, axis)


def _node(layer):
    """The layer's only call in the model (generated models call every layer once)."""
    nodes = layer._inbound_nodes
    if len(nodes) != 1:
        raise WeightsError(
            f"layer {layer.name} is called {len(nodes)} times; expected once"
        )
    return nodes[0]


def _orders(model):
    """({layer: order of its input features}, {layer: order of its output}), an order being
    the (H, W, C) shape of a flattened map or None."""
    inputs_of, outputs_of, by_tensor = {}, {}, {}
    for layer in model.layers:
        node = _node(layer)
        inputs = [by_tensor.get(id(t)) for t in node.input_tensors]
        known = {o for o in inputs if o is not None}
        if known:
            inputs_of[layer.name] = known.pop()
        out = None
        if isinstance(layer, keras.layers.Flatten):
            shape = tuple(node.input_tensors[0].shape[1:])
            out = inputs[0]
            if len(shape) == 3 and shape[0] * shape[1] > 1 and shape[2] > 1:
                out = shape
        elif isinstance(layer, FEATURE_WISE) or (
            isinstance(layer, MERGES) and len(set(inputs)) == 1
        ):
            out = inputs[0] if inputs else None
        elif layer.name in inputs_of and not isinstance(layer, keras.layers.Dense):
            raise WeightsError(
                f"layer {layer.name} ({type(layer).__name__}) mixes the features of a flattened "
                "map, whose order differs between Keras (H, W, C) and the portable file (C, H, W)"
            )
        outputs_of[layer.name] = out
        for t in node.output_tensors:
            by_tensor[id(t)] = out
    return inputs_of, outputs_of


def flatten_orders(model):
    """{layer name: (H, W, C)} for every layer whose input features are a flattened map.

    Follows each Flatten of a spatial map through feature-wise layers; a layer that mixes
    features (Dense) ends the order. None of these maps is trivial (H * W > 1 and C > 1).
    """
    return _orders(model)[0]


def output_orders(model):
    """{layer name: (H, W, C) or None}: the flatten order of each layer's output."""
    return _orders(model)[1]


def to_portable_features(values, order):
    """A (..., features) array in Keras's H, W, C flatten order `order` -> C, H, W order."""
    return hwc_to_chw(values, order)


def _conv_out(kernel):
    return np.transpose(kernel, (3, 2, 0, 1))


def _conv_in(weight):
    return np.transpose(weight, (2, 3, 1, 0))


def _dense(order):
    """(to portable, from portable) for a dense kernel fed by a map flattened from `order`."""

    def out(kernel):
        return np.transpose(hwc_to_chw(kernel, order, axis=0))

    def into(weight):
        return chw_to_hwc(np.transpose(weight), order, axis=0)

    return out, into


def _vector(order):
    """(to portable, from portable) for a per-feature vector of a map flattened from `order`."""
    return (lambda v: hwc_to_chw(v, order)), (lambda v: chw_to_hwc(v, order))


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
        if not layer.weights:
            continue
        order = orders.get(layer.name)
        name = layer.name
        if isinstance(layer, keras.layers.Conv2D):
            kh, kw, per_group, filters = layer.kernel.shape
            convert = (_conv_out, _conv_in)
            entries.append(
                _entry(
                    f"{name}.weight",
                    layer.kernel,
                    convert,
                    (filters, per_group, kh, kw),
                )
            )
            if layer.use_bias:
                entries.append(_entry(f"{name}.bias", layer.bias, _vector(None)))
        elif isinstance(layer, keras.layers.Dense):
            shape = tuple(reversed(layer.kernel.shape))
            entries.append(_entry(f"{name}.weight", layer.kernel, _dense(order), shape))
            if layer.use_bias:
                entries.append(_entry(f"{name}.bias", layer.bias, _vector(None)))
        elif isinstance(layer, keras.layers.BatchNormalization):
            for portable, attr in BATCHNORM:
                variable = getattr(layer, attr, None)
                if variable is not None:
                    entries.append(
                        _entry(f"{name}.{portable}", variable, _vector(order))
                    )
        else:
            raise WeightsError(
                f"layer {name} ({type(layer).__name__}) has weights but no portable layout"
            )
    return entries


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


def load_arrays(model, arrays, source="the arrays"):
    """Assign {portable name: array} to the model; strict: every tensor and nothing else."""
    entries = portable_variables(model)
    expected = {e.name: e.shape for e in entries}
    check_arrays(expected, {n: np.shape(a) for n, a in arrays.items()}, source)
    for e in entries:
        value = e.from_portable(np.asarray(arrays[e.name]))
        e.variable.assign(np.asarray(value, dtype=e.variable.dtype))
    return model


def load_weights(model, path):
    """Load a portable .npz (written by either backend) into the model; WeightsError if it
    does not fit (the message names every missing, extra and wrongly shaped tensor)."""
    return load_arrays(model, read_npz(path), str(path))
