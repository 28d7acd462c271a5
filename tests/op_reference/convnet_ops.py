"""NumPy references of the activations, layer norm and layer scale (issue 12), written from
their definitions (README "Ops") and shared by the PyTorch and Keras tests. Channels are the
given axis: 1 for PyTorch's (N, C, H, W), -1 for Keras's (N, H, W, C) and for vectors."""

import math

import numpy as np

_erf = np.vectorize(math.erf)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def relu6(x):
    return np.clip(x, 0.0, 6.0)


ACTIVATIONS = {
    "silu": lambda x: x * sigmoid(x),
    "hardswish": lambda x: x * relu6(x + 3.0) / 6.0,
    "hardsigmoid": lambda x: relu6(x + 3.0) / 6.0,
    "mish": lambda x: x * np.tanh(np.log1p(np.exp(x))),
    "gelu": lambda x: 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0))),
    "gelu(approximate=none)": lambda x: 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0))),
    "gelu(approximate=tanh)": lambda x: (
        0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
    ),
}


def activation_inputs(shape, seed=0):
    """Values over the interesting range of every activation: both sides of -3, 0 and 3."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-7.0, 7.0, size=shape)
    x.flat[:7] = [-3.0, 3.0, 0.0, -1e-3, 1e-3, -6.5, 6.5]
    return x.astype(np.float32).astype(np.float64)


def layernorm(x, weight, bias, eps, axis):
    """(x - mean) / sqrt(biased variance + eps) * weight + bias over `axis`."""
    mean = x.mean(axis=axis, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axis, keepdims=True)
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]
    return (x - mean) / np.sqrt(var + eps) * weight.reshape(shape) + bias.reshape(shape)


def layer_scale(x, scale, axis):
    """Each channel along `axis` times its scale."""
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]
    return x * scale.reshape(shape)
