"""The portable weight file, framework-free: reading, writing and checking its .npz (NumPy only).

Layout (both backends' `weights.py` read and write it; `archdsl weights SPEC FILE.npz` checks
a file against a spec): one float32 array per tensor, keyed `statement.op.param` with the names
of the spec's reports (`conv1.conv.weight`):
  conv       weight (filters, in_channels / groups, kh, kw), bias (filters,)
  conv_transpose  weight (in_channels, filters / groups, kh, kw) (PyTorch's), bias (filters,)
  dense      weight (units, inputs), bias (units,); the inputs of a dense layer fed by `flatten`
             of a C x H x W map are in C, H, W order (PyTorch's), whatever the backend's order
  batchnorm  weight (scale), bias (shift), running_mean, running_var, all (channels,)
  layernorm  weight (scale), bias (shift), both (channels,)
  layer_scale scale (channels,) (torchvision's ConvNeXt keeps it as (channels, 1, 1))
  class_token  token (1, 1, D) (torchvision ViT's class_token)
  position_embedding  embedding (1, L, D) (torchvision ViT's encoder.pos_embedding)
  attention  in_proj_weight (3 * D, D) (the Q, K and V projections' rows, in that order),
             in_proj_bias (3 * D,), out_proj.weight (D, D), out_proj.bias (D,):
             torch.nn.MultiheadAttention's names and shapes, so torchvision's load unchanged
  dense and layernorm on L x D tokens hold the tensors they hold on a vector of D features
"""

import numpy as np

# the runtime beside this file (isort: split keeps one order wherever ruff runs)
# isort: split
from metrics_log import atomic_write
from npzcheck import ZIP_ERRORS, NpzError, printable, read_headers


class WeightsError(ValueError):
    """A weight file does not fit the model or cannot be read (a one-line message)."""


def read_npz(path, expected=None):
    """{name: array} of every array in an .npz file, read without pickle once its headers
    pass npzcheck and, given `expected` {name: shape}, check_arrays: a file that does not
    fit is refused before any array is read."""
    try:
        headers = read_headers(path)
    except NpzError as exc:
        raise WeightsError(str(exc)) from None
    if expected is not None:
        check_arrays(
            expected, {n: shape for n, (shape, _) in headers.items()}, str(path)
        )
    # np.load can still fail on data its headers did not give away (a bad CRC)
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[f"{name}.npy"] for name in headers}
    except ZIP_ERRORS as exc:
        raise WeightsError(
            f"{printable(str(path))}: the arrays cannot be read ({printable(str(exc))})"
        ) from None


def write_npz(path, arrays):
    """Write {name: array} as float32 arrays, uncompressed, in the given order, atomically
    (a reader sees the old file or the whole new one)."""
    floats = {name: np.asarray(a, dtype=np.float32) for name, a in arrays.items()}
    atomic_write(path, lambda f: np.savez(f, **floats))


def _dims(shape):
    return " x ".join(map(str, shape)) or "scalar"


def check_arrays(expected, found, source="the weight file"):
    """Raise WeightsError naming every missing, extra or wrongly shaped tensor.

    expected and found map tensor names to shapes; names from `found` and the source are
    printed with their control characters made visible.
    """
    problems = []
    missing = [n for n in expected if n not in found]
    extra = sorted(printable(n) for n in found if n not in expected)
    if missing:
        problems.append(f"missing {', '.join(missing)}")
    if extra:
        problems.append(f"extra (not in the model) {', '.join(extra)}")
    for name in expected:
        if name in found and tuple(found[name]) != tuple(expected[name]):
            problems.append(
                f"{name} is {_dims(found[name])} where the model needs {_dims(expected[name])}"
            )
    if problems:
        raise WeightsError(
            f"{printable(source)} does not fit the model: " + "; ".join(problems)
        )
