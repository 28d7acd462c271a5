"""NumPy references of `reshape` and `permute`, written from their definitions (README "Ops")
with explicit index loops, and the spec both backends' tests run. Each example's tensor is in
the portable (PyTorch) order: maps (N, C, H, W), tokens (N, L, D), vectors (N, F); the
callers convert maps to channels-last for Keras."""

import numpy as np
from token_ops import to_tokens

# every layout to every other one, a -1, and each op after each layout
SPEC = """model T
input x: 4 x 2 x 3
a = permute(1, 2, 0) |> reshape(24) from x
b = reshape(6, 4) |> permute(1, 0) |> reshape(24) from x
t = to_tokens from x
e = reshape(2, -1, 4) |> permute(2, 0, 1) |> reshape(24) from t
f = flatten |> reshape(3, 4, 2) |> reshape(4, 6) |> reshape(24) from x
out = concat(a, b, e, f)
"""


def reshape(x, dims):
    """(N, *shape) -> (N, *dims): the k-th element of an example, counting its positions in
    row-major order, goes to the k-th position of dims, counted the same way."""
    out = np.empty((x.shape[0], *dims), x.dtype)
    sources, targets = list(np.ndindex(*x.shape[1:])), list(np.ndindex(*dims))
    for source, target in zip(sources, targets, strict=True):
        out[(slice(None), *target)] = x[(slice(None), *source)]
    return out


def permute(x, axes):
    """(N, *shape) -> output axis i is input axis axes[i]: out[j] = x[i] with i[axes[k]] = j[k]."""
    out = np.empty((x.shape[0], *(x.shape[1 + a] for a in axes)), x.dtype)
    for target in np.ndindex(*out.shape[1:]):
        source = [0] * len(axes)
        for k, axis in enumerate(axes):
            source[axis] = target[k]
        out[(slice(None), *target)] = x[(slice(None), *source)]
    return out


def spec_layers(x):
    """{layer of SPEC: its reference output} for a (N, 4, 2, 3) batch, and `out` under "out"."""
    got = {"a.permute": permute(x, (1, 2, 0))}
    got["b.reshape"] = reshape(x, (6, 4))
    got["b.permute"] = permute(got["b.reshape"], (1, 0))
    got["e.reshape"] = reshape(to_tokens(x), (2, 3, 4))
    got["e.permute"] = permute(got["e.reshape"], (2, 0, 1))
    got["f.reshape"] = reshape(reshape(x, (24,)), (3, 4, 2))  # flatten: C, H, W order
    got["f.reshape_2"] = reshape(got["f.reshape"], (4, 6))
    last = ("a.permute", "b.permute", "e.permute", "f.reshape_2")
    got["out"] = np.concatenate([reshape(got[name], (24,)) for name in last], axis=1)
    return got
