"""NumPy references of Swin's ops (issue 13), written from their definitions (README "Ops"),
window by window and head by head, and shared by the PyTorch and Keras tests. Maps are
channels-last here, (N, H, W, C): PyTorch's tests transpose their (N, C, H, W) ones."""

import math

import numpy as np

MASKED = -100.0  # the logit between positions of different regions of a shifted window


def padded(size, multiple):
    """`size` rounded up to a multiple of `multiple`."""
    return -(-size // multiple) * multiple


def space_to_depth(x, block):
    """Zero-pad H and W after the map to whole blocks; then the pixel at offset (dy, dx) of
    each block goes to channels (dx * block + dy) * C onwards."""
    n, h, w, c = x.shape
    hp, wp = padded(h, block), padded(w, block)
    full = np.zeros((n, hp, wp, c), x.dtype)
    full[:, :h, :w] = x
    out = np.zeros((n, hp // block, wp // block, block * block * c), x.dtype)
    for dy in range(block):
        for dx in range(block):
            start = (dx * block + dy) * c
            out[..., start : start + c] = full[:, dy::block, dx::block]
    return out


def _bands(size, window, shift):
    """Each row (column) of the shifted map's region: 2 for the `shift` last ones (wrapped
    around by the shift), 1 for the rest of the last window, 0 before; all 0 unshifted."""
    if not shift:
        return np.zeros(size, int)
    return np.array([0 if i < size - window else 1 if i < size - shift else 2 for i in range(size)])


def _relative_bias(table, window, head):
    """bias[p, q] = table[(dy + w - 1) * (2w - 1) + dx + w - 1, head], (dy, dx) = p - q."""
    cells = [(r, c) for r in range(window) for c in range(window)]
    side = 2 * window - 1
    return np.array(
        [
            [
                table[(p[0] - q[0] + window - 1) * side + p[1] - q[1] + window - 1, head]
                for q in cells
            ]
            for p in cells
        ]
    )


def _softmax(logits):
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def window_attention(x, tensors, heads, window, shift):
    """torchvision's shifted window attention of (N, H, W, C) maps, `tensors` holding qkv.weight
    (3C, C), qkv.bias, proj.weight (C, C), proj.bias and relative_position_bias_table."""
    n, h, w, c = x.shape
    hp, wp = padded(h, window), padded(w, window)
    shifts = [shift if window < size else 0 for size in (hp, wp)]
    full = np.zeros((n, hp, wp, c))
    full[:, :h, :w] = x
    full = np.roll(full, (-shifts[0], -shifts[1]), axis=(1, 2))
    regions = _bands(hp, window, shifts[0])[:, None] * 3 + _bands(wp, window, shifts[1])[None, :]
    out = np.zeros_like(full)
    depth = c // heads
    biases = [
        _relative_bias(tensors["relative_position_bias_table"], window, k) for k in range(heads)
    ]
    for top in range(0, hp, window):
        for left in range(0, wp, window):
            cells = (slice(top, top + window), slice(left, left + window))
            tokens = full[:, cells[0], cells[1]].reshape(n, window * window, c)
            labels = regions[cells].reshape(-1)
            mask = np.where(labels[:, None] == labels[None, :], 0.0, MASKED)
            qkv = tokens @ tensors["qkv.weight"].T + tensors["qkv.bias"]
            heads_out = []
            for k in range(heads):
                q, kk, v = (
                    qkv[..., (i * heads + k) * depth : (i * heads + k + 1) * depth]
                    for i in range(3)
                )
                logits = q @ kk.transpose(0, 2, 1) / math.sqrt(depth) + biases[k] + mask
                heads_out.append(_softmax(logits) @ v)
            mixed = (
                np.concatenate(heads_out, axis=-1) @ tensors["proj.weight"].T + tensors["proj.bias"]
            )
            out[:, cells[0], cells[1]] = mixed.reshape(n, window, window, c)
    out = np.roll(out, shifts, axis=(1, 2))
    return out[:, :h, :w]
