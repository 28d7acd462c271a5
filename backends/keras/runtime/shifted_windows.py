"""Swin Transformer's layers on channels-last maps (N, H, W, C), computing what
torchvision's `shifted_window_attention` and `_patch_merging_pad` compute.

ShiftedWindowAttention holds its variables in the portable layout (PyTorch's: qkv_weight
(3C, C), qkv_bias (3C,), proj_weight (C, C), proj_bias (C,), relative_position_bias_table
((2w - 1)^2, heads)); the relative position index and the shift mask are constants derived
from the input's size.
"""

import keras
import numpy as np
from keras import ops

# the runtime beside this file (isort: split keeps one order wherever ruff runs)
# isort: split
from initializers import TruncatedNormal

MASKED = -100.0  # torchvision's logit between positions of different shifted regions


def padded(size, window):
    """`size` rounded up to a multiple of `window`."""
    return -(-size // window) * window


def relative_position_index(window):
    """torchvision's relative_position_index: for query i and key j of a window (positions
    in row-major order), the row of the bias table holding their offset, flattened."""
    rows, columns = np.meshgrid(np.arange(window), np.arange(window), indexing="ij")
    coords = np.stack([rows.reshape(-1), columns.reshape(-1)])
    offsets = (coords[:, :, None] - coords[:, None, :]).transpose(1, 2, 0) + (
        window - 1
    )
    return (offsets[:, :, 0] * (2 * window - 1) + offsets[:, :, 1]).reshape(-1)


def _regions(window, shift):
    """torchvision's h_slices (w_slices): the three bands of a shifted axis."""
    return (slice(0, -window), slice(-window, -shift), slice(-shift, None))


def shift_mask(height, width, window, shifts):
    """torchvision's attention mask of a cyclically shifted (height, width) map: per window,
    0 between positions of the same region before the shift and MASKED between others,
    (windows, window^2, window^2)."""
    regions = np.zeros((height, width))
    count = 0
    for rows in _regions(window, shifts[0]):
        for columns in _regions(window, shifts[1]):
            regions[rows, columns] = count
            count += 1
    tiles = regions.reshape(height // window, window, width // window, window)
    tiles = tiles.transpose(0, 2, 1, 3).reshape(-1, window * window)
    differ = tiles[:, None, :] - tiles[:, :, None]
    return np.where(differ != 0, MASKED, 0.0).astype(np.float32)


def _roll(x, shifts):
    """x rolled by shifts[0] rows and shifts[1] columns (one axis at a time)."""
    for axis, shift in zip((1, 2), shifts, strict=True):
        if shift:
            x = ops.roll(x, shift, axis=axis)
    return x


@keras.saving.register_keras_serializable(package="archdsl")
class ShiftedWindowAttention(keras.layers.Layer):
    """Multi-head self-attention within window x window windows of a map, the map padded
    to whole windows and cyclically shifted by `shift` (not along an axis that one window
    covers), with a learned relative position bias: torchvision's ShiftedWindowAttention."""

    def __init__(self, heads, window, shift=0, **kwargs):
        """heads: attention heads; window: its side; shift: the cyclic shift."""
        super().__init__(**kwargs)
        self.heads, self.window, self.shift = heads, window, shift

    def build(self, input_shape):
        """torchvision's tensors (weights and the table trunc_normal(std=0.02), biases 0),
        the index and, for a shifted map, the mask."""
        (h, w, c), win = input_shape[1:], self.window
        self.size, self.padded = (h, w), (padded(h, win), padded(w, win))
        self.shifts = tuple(self.shift if win < n else 0 for n in self.padded)
        shapes = {
            "qkv_weight": (3 * c, c),
            "qkv_bias": (3 * c,),
            "proj_weight": (c, c),
            "proj_bias": (c,),
            "relative_position_bias_table": ((2 * win - 1) ** 2, self.heads),
        }
        for name, shape in shapes.items():
            initial = "zeros" if name.endswith("bias") else TruncatedNormal(stddev=0.02)
            setattr(
                self, name, self.add_weight(shape=shape, initializer=initial, name=name)
            )
        self.index = relative_position_index(win)
        self.mask = (
            shift_mask(*self.padded, win, self.shifts) if any(self.shifts) else None
        )

    def call(self, x):
        """Pad, shift, attend within each window, shift back, unpad: (N, H, W, C) kept."""
        (h, w), (hp, wp), win = self.size, self.padded, self.window
        c = x.shape[-1]
        x = ops.pad(x, [[0, 0], [0, hp - h], [0, wp - w], [0, 0]])
        x = _roll(x, [-s for s in self.shifts])
        x = ops.reshape(x, (-1, hp // win, win, wp // win, win, c))
        x = ops.reshape(ops.transpose(x, (0, 1, 3, 2, 4, 5)), (-1, win * win, c))
        x = self.attend(x)
        x = ops.reshape(x, (-1, hp // win, wp // win, win, win, c))
        x = ops.reshape(ops.transpose(x, (0, 1, 3, 2, 4, 5)), (-1, hp, wp, c))
        return _roll(x, self.shifts)[:, :h, :w, :]

    def attend(self, x):
        """softmax(Q K^T / sqrt(d) + bias [+ mask]) V per head, then proj: (windows of the
        batch, w^2, C) -> the same, in torchvision's order of operations."""
        tokens, c = x.shape[1], x.shape[2]
        depth = c // self.heads
        weight, bias = (ops.cast(v, x.dtype) for v in (self.qkv_weight, self.qkv_bias))
        qkv = ops.matmul(x, ops.transpose(weight)) + bias
        qkv = ops.transpose(
            ops.reshape(qkv, (-1, tokens, 3, self.heads, depth)), (2, 0, 3, 1, 4)
        )
        q, k, v = qkv[0] * depth**-0.5, qkv[1], qkv[2]
        attn = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) + self.position_bias(
            x.dtype
        )
        if self.mask is not None:
            shape = (-1, self.mask.shape[0], self.heads, tokens, tokens)
            mask = ops.convert_to_tensor(self.mask[None, :, None], x.dtype)
            attn = ops.reshape(
                ops.reshape(attn, shape) + mask, (-1, self.heads, tokens, tokens)
            )
        attn = ops.softmax(attn, axis=-1)
        x = ops.reshape(
            ops.transpose(ops.matmul(attn, v), (0, 2, 1, 3)), (-1, tokens, c)
        )
        weight, bias = (
            ops.cast(v, x.dtype) for v in (self.proj_weight, self.proj_bias)
        )
        return ops.matmul(x, ops.transpose(weight)) + bias

    def position_bias(self, dtype):
        """The bias of each head for each (query, key) pair: (1, heads, w^2, w^2)."""
        tokens = self.window * self.window
        table = ops.cast(self.relative_position_bias_table, dtype)
        bias = ops.reshape(ops.take(table, self.index, axis=0), (tokens, tokens, -1))
        return ops.expand_dims(ops.transpose(bias, (2, 0, 1)), 0)

    def get_config(self):
        """Constructor arguments, for saving."""
        config = {"heads": self.heads, "window": self.window, "shift": self.shift}
        return {**super().get_config(), **config}


@keras.saving.register_keras_serializable(package="archdsl")
class SpaceToDepth(keras.layers.Layer):
    """Each block x block patch's pixels stacked on the channels, offsets (0, 0), (1, 0),
    (0, 1), (1, 1) (row offset first) as torchvision's Swin PatchMerging gathers them, the
    map zero-padded at the bottom and right to whole blocks."""

    def __init__(self, block=2, **kwargs):
        """block: the patch's side."""
        super().__init__(**kwargs)
        self.block = block

    def call(self, x):
        """(N, H, W, C) -> (N, ceil(H / block), ceil(W / block), block^2 C)."""
        b, (h, w) = self.block, x.shape[1:3]
        x = ops.pad(x, [[0, 0], [0, padded(h, b) - h], [0, padded(w, b) - w], [0, 0]])
        parts = [x[:, dy::b, dx::b, :] for dx in range(b) for dy in range(b)]
        return ops.concatenate(parts, axis=-1)

    def get_config(self):
        """Constructor arguments, for saving."""
        return {**super().get_config(), "block": self.block}
