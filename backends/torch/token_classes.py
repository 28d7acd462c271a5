"""The nn.Module classes model.py defines for token sequences (N, L, D), and how
reset_parameters initialises the tensors of the token ops."""

from __future__ import annotations

import math

from archdsl.initializers import Distribution

TO_TOKENS_CLASS = '''class ToTokens(nn.Module):
    """An (N, C, H, W) map as (N, H*W, C) tokens, row by row (as torchvision's ViT)."""

    def forward(self, x):
        """x.reshape(n, c, h * w).permute(0, 2, 1)."""
        return x.flatten(2).transpose(1, 2)
'''

TO_MAP_CLASS = '''class ToMap(nn.Module):
    """(N, H*W, D) tokens as an (N, D, H, W) map (the inverse of ToTokens)."""

    def __init__(self, height, width):
        """height, width: the map's size; height * width is the number of tokens."""
        super().__init__()
        self.height, self.width = height, width

    def forward(self, x):
        """Token h * width + w becomes position (h, w)."""
        return x.transpose(1, 2).reshape(x.shape[0], -1, self.height, self.width)
'''

SELECT_TOKEN_CLASS = '''class SelectToken(nn.Module):
    """Token `index` of (N, L, D) tokens: an (N, D) vector."""

    def __init__(self, index):
        """index: which token, from 0."""
        super().__init__()
        self.index = index

    def forward(self, x):
        """x[:, index]."""
        return x[:, self.index]
'''

MEAN_TOKENS_CLASS = '''class MeanTokens(nn.Module):
    """The mean of (N, L, D) tokens: an (N, D) vector; given a padding mask (True at real
    tokens), the mean of the real tokens (zeros for a text without any)."""

    takes_mask = True

    def forward(self, x, mask=None):
        """The mean over the (real) tokens."""
        if mask is None:
            return x.mean(dim=1)
        weights = mask.unsqueeze(-1).to(x.dtype)
        return (x * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1)
'''

CLASS_TOKEN_CLASS = '''class ClassToken(nn.Module):
    """A learned (1, 1, D) token put before (N, L, D) tokens (ViT's class_token)."""

    def __init__(self, dim):
        """dim: the features of a token."""
        super().__init__()
        self.token = nn.Parameter(torch.zeros(1, 1, dim))

    def forward(self, x):
        """(N, L + 1, D): the token, then x."""
        return torch.cat([self.token.expand(x.shape[0], -1, -1), x], dim=1)
'''

POSITION_EMBEDDING_CLASS = '''class PositionEmbedding(nn.Module):
    """A learned (1, L, D) tensor added to (N, L, D) tokens (ViT's pos_embedding)."""

    def __init__(self, length, dim):
        """length, dim: the tokens' shape."""
        super().__init__()
        self.embedding = nn.Parameter(torch.zeros(1, length, dim))

    def forward(self, x):
        """x plus the embedding."""
        return x + self.embedding
'''

SELF_ATTENTION_CLASS = '''class SelfAttention(nn.Module):
    """Multi-head self-attention over (N, L, D) tokens with the tensors of
    nn.MultiheadAttention (in_proj_weight: the Q, K, V projections' rows; out_proj), by
    scaled_dot_product_attention: softmax(Q K^T / sqrt(D / heads)) V per head. Given a
    padding mask (True at real tokens), no token attends to padding (a text without any
    real token attends to all of it)."""

    takes_mask = True

    def __init__(self, dim, heads, dropout=0.0, bias=True):
        """dim: features per token; heads: how many (they divide dim); dropout: on the
        attention weights in training; bias: of the projections."""
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim)) if bias else None
        self.out_proj = nn.Linear(dim, dim, bias=bias)

    def forward(self, x, mask=None):
        """Project to Q, K, V, attend within each head, join the heads, project back."""
        n, length, dim = x.shape
        qkv = nn.functional.linear(x, self.in_proj_weight, self.in_proj_bias)
        qkv = qkv.view(n, length, 3, self.heads, dim // self.heads)
        qkv = qkv.permute(2, 0, 3, 1, 4)  # (Q K V, N, heads, L, D / heads)
        p = self.dropout if self.training else 0.0
        keys = None
        if mask is not None:  # (N, 1, 1, L): the keys each query may attend to
            keys = (mask | ~mask.any(dim=1, keepdim=True))[:, None, None, :]
        out = nn.functional.scaled_dot_product_attention(
            *qkv, attn_mask=keys, dropout_p=p
        )
        return self.out_proj(out.transpose(1, 2).reshape(n, length, dim))
'''

TOKEN_HELPERS = (
    ("ToTokens", TO_TOKENS_CLASS),
    ("ToMap", TO_MAP_CLASS),
    ("SelectToken", SELECT_TOKEN_CLASS),
    ("MeanTokens", MEAN_TOKENS_CLASS),
    ("ClassToken", CLASS_TOKEN_CLASS),
    ("PositionEmbedding", POSITION_EMBEDDING_CLASS),
    ("SelfAttention", SELF_ATTENTION_CLASS),
)


def _attention_inits(op, layer) -> tuple[str, list[tuple[str, Distribution]]]:
    """nn.MultiheadAttention's: in_proj_weight glorot_uniform over (3D, D), out_proj.weight
    U(+-1/sqrt(D)) (nn.Linear's), biases zeros."""
    dim = layer.input_shape[1]
    glorot = math.sqrt(6.0 / (dim + 3 * dim))
    inits = [
        ("in_proj_weight", Distribution("uniform", -glorot, glorot)),
        ("out_proj.weight", Distribution("uniform", -1 / math.sqrt(dim), 1 / math.sqrt(dim))),
    ]
    if op.bias:
        zero = Distribution("constant", 0.0)
        inits[1:1] = [("in_proj_bias", zero)]
        inits.append(("out_proj.bias", zero))
    rule = "as nn.MultiheadAttention"
    return rule, inits


# op -> (op, layer) -> (the comment over its init lines, [(tensor, distribution)])
TOKEN_INITS = {
    "class_token": lambda op, layer: (
        "token zeros (torchvision's)",
        [("token", Distribution("constant", 0.0))],
    ),
    "position_embedding": lambda op, layer: (
        f"embedding normal(std={op.std:g})",
        [("embedding", Distribution("normal", 0.0, op.std))],
    ),
    "attention": _attention_inits,
}
