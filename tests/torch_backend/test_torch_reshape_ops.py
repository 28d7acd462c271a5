"""`reshape` and `permute` in PyTorch against NumPy's index loops (tests/op_reference): every
layer of one spec that takes each layout to each other one, the model's output; no tensors."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "op_reference"))
from reshape_ops import SPEC, spec_layers  # noqa: E402

torch = pytest.importorskip("torch")


def test_every_layer_is_numpys(compiled):
    model = compiled(SPEC).module.build_model().eval()
    assert not list(model.parameters()) and not list(model.buffers())
    x = np.random.default_rng(0).normal(size=(2, 4, 2, 3)).astype(np.float32)
    want, got = spec_layers(x), {}
    for name in want.keys() - {"out"}:
        model.get_submodule(name).register_forward_hook(
            lambda module, args, out, name=name: got.update({name: out.numpy()})
        )
    with torch.no_grad():
        got["out"] = model(torch.as_tensor(x)).numpy()
    assert got.keys() == want.keys()
    for name, expected in want.items():
        np.testing.assert_array_equal(got[name], expected, err_msg=name)
