"""Keras 3 layers for token sequences (N, L, D) and self-attention (keras.ops only).

Tokens have the same layout in both backends; a map is channels-last here, so H*W tokens
of C features are its rows read in order, as PyTorch's ToTokens reads them. The learned
tensors are held in PyTorch's shapes (the portable layout): the class token (1, 1, D), the
position embedding (1, L, D), the attention's in_proj_weight (3D, D) and out_proj weight
(D, D), as nn.MultiheadAttention holds them.
"""

import math

import keras
from keras import ops

# the runtime beside this file (isort: split keeps one order wherever ruff runs)
# isort: split
import torch_names  # noqa: F401  (dotted layer names under Keras's torch backend)


@keras.saving.register_keras_serializable(package="archdsl")
class ToTokens(keras.layers.Layer):
    """An (N, H, W, C) map as (N, H*W, C) tokens, row by row."""

    def call(self, x):
        """Position (h, w) becomes token h * W + w."""
        h, w, c = x.shape[1:]
        return ops.reshape(x, (-1, h * w, c))

    def compute_output_shape(self, input_shape):
        """(N, H*W, C)."""
        n, h, w, c = input_shape
        return (n, h * w, c)


@keras.saving.register_keras_serializable(package="archdsl")
class ToMap(keras.layers.Layer):
    """(N, H*W, D) tokens as an (N, H, W, D) map (the inverse of ToTokens)."""

    def __init__(self, height, width, **kwargs):
        """height, width: the map's size; height * width is the number of tokens."""
        super().__init__(**kwargs)
        self.height, self.width = height, width

    def call(self, x):
        """Token h * width + w becomes position (h, w)."""
        return ops.reshape(x, (-1, self.height, self.width, x.shape[-1]))

    def compute_output_shape(self, input_shape):
        """(N, H, W, D)."""
        return (input_shape[0], self.height, self.width, input_shape[-1])

    def get_config(self):
        """Constructor arguments, for saving."""
        return {**super().get_config(), "height": self.height, "width": self.width}


@keras.saving.register_keras_serializable(package="archdsl")
class SelectToken(keras.layers.Layer):
    """Token `index` of (N, L, D) tokens: an (N, D) vector."""

    def __init__(self, index, **kwargs):
        """index: which token, from 0."""
        super().__init__(**kwargs)
        self.index = index

    def call(self, x):
        """x[:, index]."""
        return x[:, self.index]

    def compute_output_shape(self, input_shape):
        """(N, D)."""
        return (input_shape[0], input_shape[-1])

    def get_config(self):
        """Constructor arguments, for saving."""
        return {**super().get_config(), "index": self.index}


@keras.saving.register_keras_serializable(package="archdsl")
class MeanTokens(keras.layers.Layer):
    """The mean of (N, L, D) tokens: an (N, D) vector; given a padding mask (True at real
    tokens), the mean of the real tokens (zeros for a text without any)."""

    def call(self, x, mask=None):
        """The mean over the (real) tokens."""
        if mask is None:
            return ops.mean(x, axis=1)
        weights = ops.expand_dims(ops.cast(mask, x.dtype), -1)
        return ops.sum(x * weights, axis=1) / ops.maximum(ops.sum(weights, axis=1), 1.0)

    def compute_mask(self, inputs, mask=None):
        """No mask leaves this layer (the model passes one explicitly)."""

    def compute_output_shape(self, input_shape):
        """(N, D)."""
        return (input_shape[0], input_shape[-1])


@keras.saving.register_keras_serializable(package="archdsl")
class ClassToken(keras.layers.Layer):
    """A learned (1, 1, D) token, zeros at first, put before (N, L, D) tokens."""

    def build(self, input_shape):
        """The token."""
        self.token = self.add_weight(
            shape=(1, 1, input_shape[-1]), initializer="zeros", name="token"
        )

    def call(self, x):
        """(N, L + 1, D): the token, then x."""
        token = ops.cast(self.token, x.dtype)
        token = ops.broadcast_to(token, (ops.shape(x)[0], 1, x.shape[-1]))
        return ops.concatenate([token, x], axis=1)

    def compute_output_shape(self, input_shape):
        """One token more."""
        n, length, dim = input_shape
        return (n, None if length is None else length + 1, dim)


@keras.saving.register_keras_serializable(package="archdsl")
class PositionEmbedding(keras.layers.Layer):
    """A learned (1, L, D) tensor, N(0, std^2) at first, added to (N, L, D) tokens."""

    def __init__(self, std=0.02, **kwargs):
        """std: the standard deviation of the starting values."""
        super().__init__(**kwargs)
        self.std = std

    def build(self, input_shape):
        """The embedding, one row per token."""
        self.embedding = self.add_weight(
            shape=(1, *input_shape[1:]),
            initializer=keras.initializers.RandomNormal(stddev=self.std),
            name="embedding",
        )

    def call(self, x):
        """x plus the embedding."""
        return x + ops.cast(self.embedding, x.dtype)

    def get_config(self):
        """Constructor arguments, for saving."""
        return {**super().get_config(), "std": self.std}


@keras.saving.register_keras_serializable(package="archdsl")
class SelfAttention(keras.layers.Layer):
    """Multi-head self-attention over (N, L, D) tokens, torch.nn.MultiheadAttention's
    computation and tensors: Q, K, V = x W^T + b with W the (3D, D) in_proj_weight's three
    row blocks; per head softmax(Q K^T / sqrt(D / heads)) V, dropout on those weights in
    training; the heads joined in order and projected by out_proj. Initialised as torch
    does: in_proj Glorot-uniform over (3D, D), out_proj U(+-1/sqrt(D)), biases zeros."""

    def __init__(self, heads, dropout=0.0, use_bias=True, seed=None, **kwargs):
        """heads: how many (they divide D); dropout: on the attention weights in
        training; use_bias: of the projections."""
        super().__init__(**kwargs)
        self.heads, self.dropout = heads, dropout
        self.use_bias, self.seed = use_bias, seed
        self.weight_dropout = keras.layers.Dropout(dropout, seed=seed)

    def build(self, input_shape):
        """in_proj_weight (3D, D), out_proj_weight (D, D) and, with bias, their biases."""
        dim = input_shape[-1]
        glorot = math.sqrt(6.0 / (dim + 3 * dim))
        self.in_proj_weight = self._weight((3 * dim, dim), glorot, "in_proj_weight")
        self.out_proj_weight = self._weight(
            (dim, dim), 1 / math.sqrt(dim), "out_proj_weight"
        )
        self.in_proj_bias = self._bias(3 * dim, "in_proj_bias")
        self.out_proj_bias = self._bias(dim, "out_proj_bias")

    def _weight(self, shape, limit, name):
        """A weight drawn from U(-limit, limit)."""
        init = keras.initializers.RandomUniform(-limit, limit)
        return self.add_weight(shape=shape, initializer=init, name=name)

    def _bias(self, size, name):
        """A bias of zeros, or None without bias."""
        if not self.use_bias:
            return None
        return self.add_weight(shape=(size,), initializer="zeros", name=name)

    def _project(self, x, weight, bias):
        """x W^T (+ b)."""
        y = ops.matmul(x, ops.transpose(ops.cast(weight, x.dtype)))
        return y if bias is None else y + ops.cast(bias, x.dtype)

    def call(self, x, mask=None, training=False):
        """Project to Q, K, V, attend within each head, join the heads, project back;
        given a padding mask (True at real tokens), no token attends to padding (a text
        without any real token attends to all of it)."""
        length, dim = x.shape[1:]
        depth = dim // self.heads
        qkv = self._project(x, self.in_proj_weight, self.in_proj_bias)
        qkv = ops.reshape(qkv, (-1, length, 3, self.heads, depth))
        q, k, v = (qkv[:, :, i] for i in range(3))  # (N, L, heads, depth) each
        q, v = ops.transpose(q, (0, 2, 1, 3)), ops.transpose(v, (0, 2, 1, 3))
        scores = ops.matmul(q, ops.transpose(k, (0, 2, 3, 1))) / math.sqrt(depth)
        if mask is not None:
            keys = ops.logical_or(
                mask, ops.logical_not(ops.any(mask, 1, keepdims=True))
            )
            keys = ops.expand_dims(ops.expand_dims(keys, 1), 1)  # (N, 1, 1, L)
            scores = ops.where(keys, scores, float("-inf"))
        # the softmax in float32 at least (mixed precision's float16 scores), float64 kept
        wide = keras.backend.result_type(scores.dtype, "float32")
        weights = ops.cast(ops.softmax(ops.cast(scores, wide), axis=-1), x.dtype)
        weights = self.weight_dropout(weights, training=training)
        out = ops.transpose(ops.matmul(weights, v), (0, 2, 1, 3))
        out = ops.reshape(out, (-1, length, dim))
        return self._project(out, self.out_proj_weight, self.out_proj_bias)

    def compute_output_shape(self, input_shape):
        """The input's shape."""
        return tuple(input_shape)

    def compute_mask(self, inputs, mask=None):
        """No mask leaves this layer (the model passes one explicitly)."""

    def get_config(self):
        """Constructor arguments, for saving."""
        return {
            **super().get_config(),
            "heads": self.heads,
            "dropout": self.dropout,
            "use_bias": self.use_bias,
            "seed": self.seed,
        }
