"""The nn.Module classes model.py defines for `reshape` and `permute`: both act on the
per-example tensor (the batch axis stays first), in PyTorch's own (the portable) order."""

from __future__ import annotations

RESHAPE_CLASS = '''class Reshape(nn.Module):
    """Each example's tensor as `shape`, in row-major order (torch.reshape's)."""

    def __init__(self, shape):
        """shape: the per-example dims (their product is the input's element count)."""
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x):
        """x.reshape(N, *shape)."""
        return x.reshape(x.shape[0], *self.shape)
'''

PERMUTE_CLASS = '''class Permute(nn.Module):
    """Each example's axes reordered: output axis i is input axis axes[i]."""

    def __init__(self, axes):
        """axes: a permutation of the per-example axes 0 .. rank - 1."""
        super().__init__()
        self.axes = tuple(axes)

    def forward(self, x):
        """x.permute(0, *(a + 1 for a in axes))."""
        return x.permute(0, *(a + 1 for a in self.axes))
'''

RESHAPE_HELPERS = (("Reshape", RESHAPE_CLASS), ("Permute", PERMUTE_CLASS))
