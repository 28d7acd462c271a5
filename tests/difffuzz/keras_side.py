"""The Keras driver of the fuzzer: `python -m difffuzz.keras_side` (see drivers.py).

Task infer (its "dir" holds the compiled model in dir/keras and the torch driver's files): build
the model, load the weights PyTorch saved (dir/weights.npz), save them again
(dir/keras_weights.npz), run the inputs channels-last in inference mode and write the output
(dir/keras_out.npz: maps back in N, C, H, W, vectors as Keras gives them) and every statement's
output in PyTorch's layout (dir/keras_statements.npz, keras_driver.to_torch_layout); count the
parameters; then change every weight by ~10% and save them with the output they give
(keras_driver.change_weights: dir/keras_changed.npz, dir/keras_changed_out.npz).
"""

import sys
from pathlib import Path

import conform
import keras
import keras_driver
import numpy as np

from difffuzz import drivers


def channels_last(x):
    """An N, C, H, W array as N, H, W, C (a vector batch as it is)."""
    return x.transpose(0, 2, 3, 1) if x.ndim == 4 else x


def count(variables) -> int:
    """Values in the float variables (a dropout layer's seed is not a weight)."""
    return sum(int(np.prod(v.shape)) for v in variables if "float" in str(v.dtype))


def statement_params(model) -> dict:
    """{statement: parameters of its layers, running statistics included}."""
    out = {}
    for layer in model.layers:
        if "." in layer.name:
            name = layer.name.rsplit(".", 1)[0]
            out[name] = out.get(name, 0) + count(layer.weights)
    return out


def statement_values(model, x, names) -> dict:
    """{statement: its output in PyTorch's layout} for the named statements Keras has."""
    layers = keras_driver.statement_layers(model)
    names = [n for n in names if n in layers]
    if not names:
        return {}
    orders = sys.modules["weights"].output_orders(model)
    probe = keras.Model(model.inputs, [layers[n].output for n in names])
    values = probe(x, training=False)
    values = [values] if len(names) == 1 else values
    return {
        name: keras_driver.to_torch_layout(value, orders[layers[name].name])
        for name, value in zip(names, values, strict=True)
    }


def infer(task):
    """The infer task (see the module's docstring)."""
    directory = Path(task["dir"])
    keras.backend.clear_session()
    m = conform.import_model(directory / "keras")
    keras.utils.set_random_seed(conform.SEED)
    model = m.build_model()
    m.load_weights(model, directory / "weights.npz")
    m.save_weights(model, directory / "keras_weights.npz")
    with np.load(directory / "inputs.npz") as data:
        xs = [channels_last(data[name]) for name, _ in task["inputs"]]
    x = xs[0] if len(xs) == 1 else xs
    output = keras_driver.to_torch_layout(np.asarray(model(x, training=False)), None)
    np.savez(directory / "keras_out.npz", output=output)
    with np.load(directory / "torch_statements.npz") as torch_statements:
        names = torch_statements.files
    np.savez(directory / "keras_statements.npz", **statement_values(model, x, names))
    result = {
        "trainable": count(model.trainable_weights),
        "frozen": count(model.non_trainable_weights),
        "statement_params": statement_params(model),
    }
    keras_driver.change_weights(model, directory, x)
    return result


if __name__ == "__main__":
    drivers.serve("keras", {"infer": infer})
