"""The portable weight file, framework-free: reading, writing and checking its .npz (NumPy only).

Layout (both backends' `weights.py` read and write it; `archdsl weights SPEC FILE.npz` checks
a file against a spec): one float32 array per tensor, keyed `statement.op.param` with the names
of the spec's reports (`conv1.conv.weight`):
  conv       weight (filters, in_channels / groups, kh, kw), bias (filters,)
  dense      weight (units, inputs), bias (units,); the inputs of a dense layer fed by `flatten`
             of a C x H x W map are in C, H, W order (PyTorch's), whatever the backend's order
  batchnorm  weight (scale), bias (shift), running_mean, running_var, all (channels,)
"""

import numpy as np


class WeightsError(ValueError):
    """A weight file does not fit the model: missing, extra or wrongly shaped tensors."""


def read_npz(path):
    """{name: array} of every array in an .npz file."""
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def write_npz(path, arrays):
    """Write {name: array} as float32 arrays, uncompressed, in the given order."""
    with open(path, "wb") as f:
        np.savez(
            f, **{name: np.asarray(a, dtype=np.float32) for name, a in arrays.items()}
        )


def _dims(shape):
    return " x ".join(map(str, shape)) or "scalar"


def check_arrays(expected, found, source="the weight file"):
    """Raise WeightsError naming every missing, extra or wrongly shaped tensor.

    expected and found map tensor names to shapes.
    """
    problems = []
    missing = [n for n in expected if n not in found]
    extra = sorted(n for n in found if n not in expected)
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
        raise WeightsError(f"{source} does not fit the model: " + "; ".join(problems))
