"""NumPy references of the token ops and self-attention (issue 13), written from their
definitions (README "Ops") and shared by the PyTorch and Keras tests. Tokens are (N, L, D);
maps are given channels-first (N, C, H, W) and converted by the callers where needed."""

import numpy as np


def to_tokens(x):
    """(N, C, H, W) -> (N, H*W, C): token h * W + w holds position (h, w)'s channels."""
    n, c, h, w = x.shape
    return np.stack([x[:, :, i, j] for i in range(h) for j in range(w)], axis=1)


def to_map(tokens, h, w):
    """(N, H*W, D) -> (N, D, H, W), the inverse of to_tokens."""
    n, length, d = tokens.shape
    out = np.empty((n, d, h, w), tokens.dtype)
    for k in range(length):
        out[:, :, k // w, k % w] = tokens[:, k]
    return out


def class_token(tokens, token):
    """The (1, 1, D) token put before every example's tokens."""
    n = tokens.shape[0]
    return np.concatenate([np.repeat(token, n, axis=0), tokens], axis=1)


def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def attention(x, heads, in_weight, in_bias, out_weight, out_bias):
    """Multi-head self-attention, nn.MultiheadAttention's definition, head by head in loops:
    q, k, v = x W_q^T + b_q, ...; head i attends with softmax(q_i k_i^T / sqrt(d)) v_i; the
    heads are joined in order and projected by out_weight, out_bias."""
    n, length, dim = x.shape
    d = dim // heads
    q, k, v = (
        x @ in_weight[i * dim : (i + 1) * dim].T + in_bias[i * dim : (i + 1) * dim]
        for i in range(3)
    )
    out = np.zeros_like(x)
    for b in range(n):
        for i in range(heads):
            cols = slice(i * d, (i + 1) * d)
            scores = q[b, :, cols] @ k[b, :, cols].T / np.sqrt(d)
            out[b, :, cols] = softmax(scores) @ v[b, :, cols]
    return out @ out_weight.T + out_bias
