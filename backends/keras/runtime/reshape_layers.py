"""Keras 3 layers for `reshape` and `permute` (keras.ops only).

Both act on each example's tensor in PyTorch's (the portable) order, so that they compute
what the PyTorch model computes: a map is channels-last here (H, W, C), so it is read as
C, H, W first, and a map they make is put back as H, W, C. Tokens (L, D) and vectors have
the same layout in both backends.
"""

import keras
from keras import ops


def portable(x):
    """An (N, H, W, C) map as (N, C, H, W); tokens and vectors as they are."""
    return ops.transpose(x, (0, 3, 1, 2)) if len(x.shape) == 4 else x


def channels_last(x):
    """An (N, C, H, W) map as (N, H, W, C); tokens and vectors as they are."""
    return ops.transpose(x, (0, 2, 3, 1)) if len(x.shape) == 4 else x


def portable_dims(dims):
    """Per-example dims in the portable order: (H, W, C) -> (C, H, W)."""
    dims = tuple(dims)
    return (dims[2], *dims[:2]) if len(dims) == 3 else dims


def keras_dims(dims):
    """Per-example dims in this backend's order: (C, H, W) -> (H, W, C)."""
    dims = tuple(dims)
    return (*dims[1:], dims[0]) if len(dims) == 3 else dims


@keras.saving.register_keras_serializable(package="archdsl")
class Reshape(keras.layers.Layer):
    """Each example's tensor as `shape` (portable dims), in PyTorch's row-major order."""

    def __init__(self, shape, **kwargs):
        """shape: the per-example dims in the portable order (C, H, W for a map)."""
        super().__init__(**kwargs)
        self.shape = tuple(shape)

    def call(self, x):
        """torch.reshape(x, (N, *shape)) on the portable layout."""
        return channels_last(ops.reshape(portable(x), (ops.shape(x)[0], *self.shape)))

    def compute_output_shape(self, input_shape):
        """(N, *shape), a map channels-last."""
        return (input_shape[0], *keras_dims(self.shape))

    def get_config(self):
        """Constructor arguments, for saving."""
        return {**super().get_config(), "shape": list(self.shape)}


@keras.saving.register_keras_serializable(package="archdsl")
class Permute(keras.layers.Layer):
    """Each example's axes reordered (portable axes): output axis i is input axis axes[i]."""

    def __init__(self, axes, **kwargs):
        """axes: a permutation of the portable per-example axes 0 .. rank - 1."""
        super().__init__(**kwargs)
        self.axes = tuple(axes)

    def call(self, x):
        """torch.permute(x, (0, *(a + 1 for a in axes))) on the portable layout."""
        order = (0, *(a + 1 for a in self.axes))
        return channels_last(ops.transpose(portable(x), order))

    def compute_output_shape(self, input_shape):
        """The portable dims reordered, a map channels-last."""
        dims = portable_dims(input_shape[1:])
        return (input_shape[0], *keras_dims(dims[a] for a in self.axes))

    def get_config(self):
        """Constructor arguments, for saving."""
        return {**super().get_config(), "axes": list(self.axes)}
