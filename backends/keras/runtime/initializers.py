"""Keras 3 initialisers the generated models need beyond keras.initializers."""

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="archdsl")
class TruncatedNormal(keras.initializers.Initializer):
    """N(mean, stddev^2) restricted to [low, high], absolute bounds (torch's trunc_normal_).

    Keras's own TruncatedNormal cuts at 2 stddev whatever the bounds; this draws as
    torch.nn.init.trunc_normal_ does: u uniform on [erf(a), erf(b)) with a, b the bounds in
    stddev * sqrt(2) units from the mean, then mean + stddev * sqrt(2) * erfinv(u), clipped.
    """

    def __init__(self, mean=0.0, stddev=1.0, low=-2.0, high=2.0, seed=None):
        """The bounds are values, not multiples of stddev; low < high."""
        self.mean, self.stddev, self.low, self.high, self.seed = (
            mean,
            stddev,
            low,
            high,
            seed,
        )
        scale = stddev * math.sqrt(2.0)
        self._uniform = keras.initializers.RandomUniform(
            math.erf((low - mean) / scale), math.erf((high - mean) / scale), seed=seed
        )

    def __call__(self, shape, dtype=None):
        """A tensor of `shape` drawn from the truncated normal."""
        u = self._uniform(shape, dtype=dtype)
        x = ops.erfinv(u) * (self.stddev * math.sqrt(2.0)) + self.mean
        return ops.clip(x, self.low, self.high)

    def get_config(self):
        """The constructor's arguments."""
        return {
            "mean": self.mean,
            "stddev": self.stddev,
            "low": self.low,
            "high": self.high,
            "seed": self.seed,
        }
