"""Shared by tests/torch_towers and tests/keras_towers (NumPy only, no framework import).

- the pocket AlexNets in specs/: two-tower and grouped, with and without LRN;
- the weight transfer grouped -> two-tower: every conv's weight and bias split along its output
  channels into the towers (conv1 (16, 3, 11, 11) -> two (8, 3, 11, 11); grouped conv2
  (24, 8, 5, 5) -> two (12, 8, 5, 5); conv3 (32, 24, 3, 3) -> two (16, 24, 3, 3)), dense layers
  unchanged;
- a float64 NumPy reference of the whole two-tower network (eval mode: dropout is the identity)
  with the paper's LRN, b_c = a_c / (k + alpha * sum a_j^2)^beta (alpha not divided by size),
  over j in [c - size // 2, c + (size - 1) // 2] clipped at the channel edges of each tower
  (lrn="towers"), of the whole width (lrn="full", what the grouped net does) or left out.

Weights are in PyTorch's layout: conv (out, in, kh, kw), dense (out, in), NCHW activations and
flatten in C, H, W order; `from_keras` converts a Keras model's weights to it.
"""

from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

SPECS = Path(__file__).parent / "specs"
TOWERS = 2
CONVS = ("conv1", "conv2", "conv3", "conv4", "conv5")
DENSES = ("fc6", "fc7", "fc8")
LRN = dict(size=5, alpha=1e-4, beta=0.75, k=2.0)  # as the specs write it


def spec_file(name):
    """specs/NAME.arch."""
    return SPECS / f"{name}.arch"


def tower_weights(grouped, out_axis, order=range(TOWERS)):
    """{layer: [weight, bias]} of the two-tower net from the grouped net's (same layer names,
    `conv1.conv`, `fc6.dense`): conv weights and biases split along the output channels (weight
    axis `out_axis`: 0 in PyTorch's layout, -1 in Keras's); tower t gets part order[t]."""
    towers = {}
    for layer, (weight, bias) in grouped.items():
        statement = layer.rsplit(".", 1)[0]
        if statement not in CONVS:
            towers[layer] = [weight, bias]
            continue
        weights, biases = np.split(weight, TOWERS, axis=out_axis), np.split(bias, TOWERS)
        for t, part in enumerate(order):
            towers[f"{statement}_t{t}.conv"] = [weights[part], biases[part]]
    return towers


def from_keras(weights, flat_hwc):
    """Keras [kernel, bias] per layer -> PyTorch's layout; `flat_hwc` is the (H, W, C) that fc6
    flattens (Keras flattens H, W, C, PyTorch C, H, W: fc6's rows are permuted)."""
    out = {}
    for layer, (kernel, bias) in weights.items():
        if kernel.ndim == 4:
            out[layer] = [kernel.transpose(3, 2, 0, 1), bias]
        elif layer.startswith("fc6."):
            h, w, c = flat_hwc
            rows = kernel.reshape(h, w, c, -1).transpose(2, 0, 1, 3).reshape(h * w * c, -1)
            out[layer] = [rows.T, bias]
        else:
            out[layer] = [kernel.T, bias]
    return out


# ----------------------------------------------------------------------------- layers (NCHW)


def conv(x, weight, bias, stride=1, pad=0):
    """Cross-correlation of NCHW x with an (out, in, kh, kw) weight after zero padding."""
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    kh, kw = weight.shape[2:]
    patches = sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::stride, ::stride]
    return np.einsum("nchwij,ocij->nohw", patches, weight) + bias[None, :, None, None]


def relu(x):
    return np.maximum(x, 0.0)


def maxpool(x, kernel=3, stride=2):
    """Max over kernel x kernel windows at `stride`, no padding."""
    return sliding_window_view(x, (kernel, kernel), axis=(2, 3))[:, :, ::stride, ::stride].max(
        axis=(-2, -1)
    )


def lrn(a, size, alpha, beta, k):
    """The paper's LRN across the channels of a, the window clipped at a's first and last."""
    channels = a.shape[1]
    squares = a**2
    out = np.empty_like(a)
    for c in range(channels):
        lo, hi = max(0, c - size // 2), min(channels - 1, c + (size - 1) // 2)
        out[:, c] = a[:, c] / (k + alpha * squares[:, lo : hi + 1].sum(axis=1)) ** beta
    return out


def normalise(halves, mode):
    """LRN of the towers' activations: each within itself, over their concatenation, or none."""
    if mode == "towers":
        return [lrn(h, **LRN) for h in halves]
    if mode == "full":
        return np.split(lrn(np.concatenate(halves, axis=1), **LRN), TOWERS, axis=1)
    return halves


# ----------------------------------------------------------------------------- the network


def first_block(x, params, mode="towers"):
    """conv1 -> relu -> LRN -> maxpool of each tower, for NCHW x (float64)."""
    a = [relu(conv(x, *params[f"conv1_t{t}.conv"], stride=4)) for t in range(TOWERS)]
    return [maxpool(h) for h in normalise(a, mode)]


def two_tower_logits(x, params, lrn="towers"):
    """The pocket two-tower AlexNet's logits for NCHW x; params: {layer: [weight, bias]} in
    PyTorch's layout. lrn: "towers" (the paper's), "full" (the grouped net's) or None."""
    x = np.asarray(x, dtype=np.float64)
    p = {name: [np.asarray(a, dtype=np.float64) for a in arrays] for name, arrays in params.items()}
    towers = range(TOWERS)
    c1 = first_block(x, p, lrn)
    c2 = [relu(conv(c1[t], *p[f"conv2_t{t}.conv"], pad=2)) for t in towers]
    c2 = [maxpool(h) for h in normalise(c2, lrn)]
    merged = np.concatenate(c2, axis=1)  # the exchange: conv3 of each tower reads both
    c3 = [relu(conv(merged, *p[f"conv3_t{t}.conv"], pad=1)) for t in towers]
    c4 = [relu(conv(c3[t], *p[f"conv4_t{t}.conv"], pad=1)) for t in towers]
    c5 = [maxpool(relu(conv(c4[t], *p[f"conv5_t{t}.conv"], pad=1))) for t in towers]
    h = np.concatenate(c5, axis=1).reshape(len(x), -1)  # fc6 reads both towers, C, H, W order
    h = relu(h @ p["fc6.dense"][0].T + p["fc6.dense"][1])
    h = relu(h @ p["fc7.dense"][0].T + p["fc7.dense"][1])
    return h @ p["fc8.dense"][0].T + p["fc8.dense"][1]


def images(n=4, seed=0):
    """n NCHW 3 x 99 x 99 float32 inputs on the scale of pixels (0..255), where the paper's LRN
    (k=2, alpha=1e-4) visibly normalises conv1's activations."""
    return np.random.default_rng(seed).uniform(0.0, 255.0, size=(n, 3, 99, 99)).astype(np.float32)
