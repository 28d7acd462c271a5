"""Portable weights for PyTorch models: save_weights / load_weights (layout: portable.py).

The portable names and layouts are exactly the generated model's state_dict keys and tensors
(PyTorch's conv and linear layouts, C, H, W flatten order), less the batch-norm
`num_batches_tracked` counters.
"""

import numpy as np
import torch

# the runtime beside this file (isort: split keeps one order wherever ruff runs)
# isort: split
from portable import WeightsError, check_arrays, read_npz, write_npz

__all__ = [
    "WeightsError",
    "load_arrays",
    "load_weights",
    "portable_state",
    "save_weights",
    "state_arrays",
]

SKIPPED = ("num_batches_tracked",)


def portable_state(state):
    """The entries of a state dict that the portable file holds (no batch counts)."""
    return {
        name: tensor
        for name, tensor in state.items()
        if name.rsplit(".", 1)[-1] not in SKIPPED
    }


def portable_tensors(model):
    """{portable name: tensor} for every weight, bias and running statistic of the model."""
    return portable_state(model.state_dict(keep_vars=True))


def state_arrays(model):
    """{portable name: float32 array}: the model's tensors in the portable layout."""
    return {
        name: tensor.detach().cpu().numpy().astype(np.float32)
        for name, tensor in portable_tensors(model).items()
    }


def save_weights(model, path):
    """Write the model's weights to `path` (.npz) in the portable layout."""
    write_npz(path, state_arrays(model))


def load_arrays(model, arrays, source="the arrays", keep=()):
    """Copy {portable name: array} into the model; strict: every tensor (but those named
    in keep, left as they are) and nothing else."""
    tensors = {n: t for n, t in portable_tensors(model).items() if n not in keep}
    check_arrays(
        {n: tuple(t.shape) for n, t in tensors.items()},
        {n: np.shape(a) for n, a in arrays.items()},
        source,
    )
    with torch.no_grad():
        for name, tensor in tensors.items():
            value = torch.from_numpy(np.ascontiguousarray(arrays[name]))
            tensor.copy_(value.to(device=tensor.device, dtype=tensor.dtype))
    return model


def load_weights(model, path):
    """Load a portable .npz (written by either backend) into the model; WeightsError if it
    does not fit (the message names every missing, extra and wrongly shaped tensor) or is
    not a plain .npz of arrays, found from its headers before any array is read."""
    expected = {n: tuple(t.shape) for n, t in portable_tensors(model).items()}
    return load_arrays(model, read_npz(path, expected), str(path))
