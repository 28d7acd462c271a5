"""Run compiled Keras models under the backend KERAS_BACKEND names (a process of its own).

    python backend_outputs.py DIR...   each model's outputs in DIR/outputs-<backend>.npy

Keras picks its backend at import and torch may not share a process with TensorFlow, so each
backend runs here in a process of its own. Every process draws the same weights in the
portable layout (batch-norm statistics too) and the same input from fixed seeds and loads
them through the runtime's load_arrays: no weights file, whose size the zoo's VGGs would
make a disk's worth.
"""

import importlib
import math
import sys
from pathlib import Path

import keras
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "keras_backend"))
from kerasgen import import_model  # noqa: E402


def outputs_file(directory, backend):
    """Where a backend's outputs of one model go."""
    return Path(directory) / f"outputs-{backend}.npy"


def drawn(name, shape, rng):
    """A portable tensor drawn afresh: kernels He-scaled by their fan-in, per-channel scales
    and batch-norm variances around 1, shifts, biases and means around 0."""
    if len(shape) > 1:
        return rng.normal(0.0, math.sqrt(2.0 / math.prod(shape[1:])), shape)
    if name.endswith(("running_var", "weight", "scale")):
        return rng.uniform(0.5, 1.5, shape)
    return rng.normal(0.0, 0.1, shape)


def random_weights(model):
    """{portable name: array} for every tensor of the model, the same in every backend."""
    weights = importlib.import_module("weights")  # the runtime import_model loaded
    shapes = {e.name: e.shape for e in weights.portable_variables(model)}
    rng = np.random.default_rng(0)
    return {name: drawn(name, shapes[name], rng) for name in sorted(shapes)}


def outputs(directory):
    """The model's outputs for the drawn weights and a drawn batch of two inputs."""
    module = import_model(directory)
    model = module.build_model()
    importlib.import_module("weights").load_arrays(model, random_weights(model))
    rng = np.random.default_rng(1)
    if hasattr(module, "INPUT_VOCAB"):
        x = rng.integers(0, module.INPUT_VOCAB, (2, *module.INPUT_SHAPE)).astype(np.int32)
    else:
        x = rng.standard_normal((2, *module.INPUT_SHAPE)).astype(np.float32)
    return keras.ops.convert_to_numpy(module.predict(model, x))


def main(directories):
    """Write each model's outputs under this process's backend."""
    for directory in map(Path, directories):
        np.save(outputs_file(directory, keras.backend.backend()), outputs(directory))


if __name__ == "__main__":
    main(sys.argv[1:])
