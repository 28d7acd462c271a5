"""The EMA of the weights for Keras, kept as torchvision's reference keeps it in PyTorch."""

from contextlib import contextmanager

import keras
import numpy as np


class WeightAverage:
    """a <- decay*a + (1 - decay)*w over every variable of the model (weights and batch-norm
    statistics; integer variables copied); the first update after a restart copies."""

    def __init__(self, model, decay):
        """Start from the model's current variables."""
        self.variables, self.decay = model.variables, decay
        self.average = [keras.ops.convert_to_numpy(v).copy() for v in self.variables]
        self.n_averaged = 0

    def update(self, restart):
        """Fold the current variables in; restart: the next update copies instead."""
        for average, variable in zip(self.average, self.variables, strict=True):
            current = keras.ops.convert_to_numpy(variable)
            if self.n_averaged == 0 or not np.issubdtype(current.dtype, np.floating):
                average[...] = current
            else:
                average[...] = self.decay * average + (1.0 - self.decay) * current
        self.n_averaged = 0 if restart else self.n_averaged + 1

    @contextmanager
    def swapped_in(self):
        """The average in the model's variables for the block, the raw ones restored after."""
        raw = [keras.ops.convert_to_numpy(v).copy() for v in self.variables]
        self.assign(self.average)
        try:
            yield
        finally:
            self.assign(raw)

    def assign(self, arrays):
        """Set the model's variables to arrays."""
        for variable, array in zip(self.variables, arrays, strict=True):
            variable.assign(array)

    def arrays(self):
        """{"ema/00000": array, ...} for a checkpoint."""
        return {f"ema/{i:05d}": a for i, a in enumerate(self.average)}

    def load(self, arrays, n_averaged):
        """Restore arrays() and the update count; False if they do not fit the model."""
        names = [f"ema/{i:05d}" for i in range(len(self.average))]
        if set(names) != {n for n in arrays if n.startswith("ema/")}:
            return False
        fits = all(
            arrays[n].shape == a.shape and arrays[n].dtype == a.dtype
            for n, a in zip(names, self.average, strict=True)
        )
        if fits:
            self.average = [arrays[n].copy() for n in names]
            self.n_averaged = int(n_averaged)
        return fits
