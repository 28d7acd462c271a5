"""`reshape` and `permute` in Keras against NumPy's index loops (tests/op_reference), the
same references the PyTorch test meets, so both backends compute the same: every layer of
one spec that takes each layout to each other one (maps channels-last here, read as C, H, W),
and the model's output; a flatten that feeds a reshape flattens in C, H, W order."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "op_reference"))
from reshape_ops import SPEC, spec_layers  # noqa: E402

keras = pytest.importorskip("keras")


def channels_last(x):
    """A (N, C, H, W) map as (N, H, W, C); tokens and vectors as they are."""
    return np.transpose(x, (0, 2, 3, 1)) if x.ndim == 4 else x


def test_every_layer_is_numpys(compiled):
    model = compiled(SPEC).module.build_model()
    assert not model.weights
    assert type(model.get_layer("f.flatten")).__name__ == "FlattenCHW"
    x = np.random.default_rng(0).normal(size=(2, 4, 2, 3)).astype(np.float32)
    want = spec_layers(x)
    names = sorted(want.keys() - {"out"})
    probe = keras.Model(model.input, [model.get_layer(n).output for n in names] + [model.output])
    got = dict(zip([*names, "out"], probe(channels_last(x)), strict=True))
    for name, expected in want.items():
        np.testing.assert_array_equal(np.asarray(got[name]), channels_last(expected), name)
