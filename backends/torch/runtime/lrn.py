"""Local response normalisation as a few fused ops, in the input's dtype.

nn.LocalResponseNorm pads, average-pools in 3-D and scales its squared input in separate
steps (about 30 kernels per forward and backward); its `pow` runs in float32 under CUDA's
autocast, so its output does too. FusedLRN computes the same numbers as one 1 x 1
convolution of the squared input (a banded channels x channels weight) with k as its bias,
then x * d^-beta, and returns x's dtype.
"""

import torch
import torch.nn.functional as F
from torch import nn


def channel_window(channels, size, dtype=None, device=None):
    """(channels, channels, 1, 1): 1 where input channel j is inside output channel c's
    window c - size // 2 .. c + (size - 1) // 2 (nn.LocalResponseNorm's), else 0."""
    c = torch.arange(channels, device=device)
    offset = c[None, :] - c[:, None]
    inside = (offset >= -(size // 2)) & (offset <= (size - 1) // 2)
    return inside.to(dtype or torch.get_default_dtype())[:, :, None, None]


class FusedLRN(nn.LocalResponseNorm):
    """nn.LocalResponseNorm (alpha divided by `size`, as PyTorch's) for maps of `channels`
    channels: b = a / (k + alpha / size * sum of a^2 over the window)^beta."""

    def __init__(self, size, alpha=1e-4, beta=0.75, k=1.0, *, channels):
        """The window's weight and bias are constants derived from the settings (no state)."""
        super().__init__(size, alpha, beta, k)
        self.channels = channels
        self.register_buffer("window", torch.empty(0), persistent=False)
        self.register_buffer("offset", torch.empty(0), persistent=False)
        self._fill()

    def _fill(self):
        """Weight alpha / size on the window and bias k, from the Python floats, in the
        buffers' dtype and device (so a float64 model holds them exactly)."""
        dtype, device = self.window.dtype, self.window.device
        window = channel_window(self.channels, self.size, dtype, device)
        self.window = window * (self.alpha / self.size)
        self.offset = torch.full((self.channels,), self.k, dtype=dtype, device=device)

    def _apply(self, fn, recurse=True):
        """Move or convert as nn.Module does, then rebuild the constants in the new dtype."""
        super()._apply(fn, recurse)
        self._fill()
        return self

    def forward(self, x):
        """x * (k + alpha / size * window sum of x^2)^-beta, in x's dtype."""
        d = F.conv2d(x * x, self.window, self.offset)
        return x * d.pow(-self.beta).to(x.dtype)

    def extra_repr(self):
        """nn.LocalResponseNorm's settings and the channels."""
        return f"{super().extra_repr()}, channels={self.channels}"
