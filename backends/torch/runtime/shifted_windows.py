"""Swin Transformer's layers on (N, C, H, W) maps, computing what torchvision's
`shifted_window_attention` and `_patch_merging_pad` compute on (N, H, W, C) tensors.

ShiftedWindowAttention holds torchvision's tensors under torchvision's names (`qkv`,
`proj`, `relative_position_bias_table`); the relative position index and the shift mask
are derived from the constructor's sizes and kept out of the state_dict.
"""

import torch
from torch import nn

MASKED = -100.0  # torchvision's logit between positions of different shifted regions


def padded(size, window):
    """`size` rounded up to a multiple of `window`."""
    return -(-size // window) * window


def relative_position_index(window):
    """torchvision's relative_position_index: for query i and key j of a window (positions
    in row-major order), the row of the bias table holding their offset, flattened."""
    grid = torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
    coords = torch.stack(grid).flatten(1)
    offsets = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)
    return (offsets[:, :, 0] * (2 * window - 1) + offsets[:, :, 1]).flatten()


def _regions(window, shift):
    """torchvision's h_slices (w_slices): the three bands of a shifted axis."""
    return (slice(0, -window), slice(-window, -shift), slice(-shift, None))


def shift_mask(height, width, window, shifts):
    """torchvision's attention mask of a cyclically shifted (height, width) map: per window,
    0 between positions of the same region before the shift and MASKED between others,
    (windows, window^2, window^2)."""
    regions = torch.zeros(height, width)
    count = 0
    for rows in _regions(window, shifts[0]):
        for columns in _regions(window, shifts[1]):
            regions[rows, columns] = count
            count += 1
    tiles = regions.view(height // window, window, width // window, window)
    tiles = tiles.permute(0, 2, 1, 3).reshape(-1, window * window)
    differ = tiles.unsqueeze(1) - tiles.unsqueeze(2)
    return differ.masked_fill(differ != 0, MASKED).masked_fill(differ == 0, 0.0)


class ShiftedWindowAttention(nn.Module):
    """Multi-head self-attention within window x window windows of a map, the map padded
    to whole windows and cyclically shifted by `shift` (not along an axis that one window
    covers), with a learned relative position bias: torchvision's ShiftedWindowAttention."""

    def __init__(self, channels, heads, window, shift, size):
        """size: the (height, width) of the maps it receives."""
        super().__init__()
        self.heads, self.window, self.size = heads, window, tuple(size)
        self.padded = tuple(padded(n, window) for n in size)
        self.shifts = tuple(shift if window < n else 0 for n in self.padded)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = nn.Linear(channels, channels)
        table = torch.zeros((2 * window - 1) ** 2, heads)
        self.relative_position_bias_table = nn.Parameter(table)
        index = relative_position_index(window)
        self.register_buffer("relative_position_index", index, persistent=False)
        shifted = any(self.shifts)
        mask = shift_mask(*self.padded, window, self.shifts) if shifted else None
        self.register_buffer("mask", mask, persistent=False)
        self.reset_parameters()

    def reset_parameters(self):
        """torchvision's Swin initialisation: weights and the table trunc_normal(std=0.02)
        (bounds -2 and 2), biases 0."""
        for tensor in (self.qkv.weight, self.proj.weight):
            nn.init.trunc_normal_(tensor, std=0.02)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        nn.init.zeros_(self.qkv.bias)
        nn.init.zeros_(self.proj.bias)

    def position_bias(self):
        """The bias of each head for each (query, key) pair: (heads, w^2, w^2)."""
        tokens = self.window * self.window
        bias = self.relative_position_bias_table[self.relative_position_index]
        return bias.view(tokens, tokens, -1).permute(2, 0, 1)

    def forward(self, x):
        """Pad, shift, attend within each window, shift back, unpad: (N, C, H, W) kept."""
        channels, win = x.shape[1], self.window
        (h, w), (hp, wp) = self.size, self.padded
        x = nn.functional.pad(x.permute(0, 2, 3, 1), (0, 0, 0, wp - w, 0, hp - h))
        if any(self.shifts):
            x = torch.roll(x, shifts=(-self.shifts[0], -self.shifts[1]), dims=(1, 2))
        x = x.reshape(-1, hp // win, win, wp // win, win, channels)
        x = x.permute(0, 1, 3, 2, 4, 5).reshape(-1, win * win, channels)
        x = self.attend(x)
        x = x.view(-1, hp // win, wp // win, win, win, channels)
        x = x.permute(0, 1, 3, 2, 4, 5).reshape(-1, hp, wp, channels)
        if any(self.shifts):
            x = torch.roll(x, shifts=self.shifts, dims=(1, 2))
        return x[:, :h, :w, :].permute(0, 3, 1, 2)

    def attend(self, x):
        """Multi-head attention within each window, then proj: (windows of the batch, w^2,
        C) -> the same. On a GPU through scaled_dot_product_attention (a fused kernel),
        elsewhere in torchvision's own order of operations (`explicit`)."""
        windows, tokens, channels = x.shape
        depth = channels // self.heads
        qkv = self.qkv(x).reshape(windows, tokens, 3, self.heads, depth)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        out = self.fused(q, k, v) if x.is_cuda else self.explicit(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(windows, tokens, channels))

    def explicit(self, q, k, v):
        """softmax(Q K^T / sqrt(d) + bias [+ mask]) V, each (windows, heads, w^2, d), as
        torchvision computes it."""
        heads, tokens = q.shape[1], q.shape[2]
        q = q * q.shape[-1] ** -0.5
        attn = q.matmul(k.transpose(-2, -1)) + self.position_bias().unsqueeze(0)
        if self.mask is not None:
            shape = (-1, self.mask.shape[0], heads, tokens, tokens)
            attn = attn.view(shape) + self.mask.unsqueeze(1).unsqueeze(0)
            attn = attn.view(-1, heads, tokens, tokens)
        return attn.softmax(dim=-1).matmul(v)

    def fused(self, q, k, v):
        """The same through scaled_dot_product_attention, the bias and the mask of each
        window added as one float mask."""
        bias = self.position_bias().unsqueeze(0)
        if self.mask is not None:
            bias = bias + self.mask.unsqueeze(1)
            bias = bias.repeat(q.shape[0] // self.mask.shape[0], 1, 1, 1)
        return nn.functional.scaled_dot_product_attention(
            q, k, v, attn_mask=bias.to(q.dtype)
        )


class SpaceToDepth(nn.Module):
    """Each block x block patch's pixels stacked on the channels, offsets (0, 0), (1, 0),
    (0, 1), (1, 1) (row offset first) as torchvision's Swin PatchMerging gathers them, the
    map zero-padded at the bottom and right to whole blocks."""

    def __init__(self, block, size):
        """size: the (height, width) of the maps it receives."""
        super().__init__()
        self.block = block
        self.pads = tuple(padded(n, block) - n for n in size)

    def forward(self, x):
        """(N, C, H, W) -> (N, block^2 C, ceil(H / block), ceil(W / block))."""
        b = self.block
        x = nn.functional.pad(x, (0, self.pads[1], 0, self.pads[0]))
        parts = [x[:, :, dy::b, dx::b] for dx in range(b) for dy in range(b)]
        return torch.cat(parts, dim=1)
