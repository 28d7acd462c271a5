"""Blocks as Keras builder functions: `def unit(x, layers, ...)` runs a block's statements on
the layers each call is handed, and the model computes what its layers compute in the spec's
order."""

import numpy as np
import pytest
from block_specs import CONDITIONAL

keras = pytest.importorskip("keras")


def by_hand(model, x):
    """CONDITIONAL's output through its layers (found by name), each call's statements as it has them."""

    def run(*names, x):
        for name in names:
            x = model.get_layer(name)(x)
        return x

    h = run("s.0.wide.conv", "s.0.wide.relu", "s.0.body.conv", x=x)
    body = run("s.1.body.conv", x=h)
    gate = run("s.1.gate.global_avgpool", "s.1.gate.conv", "s.1.gate.sigmoid", x=body)
    h = model.get_layer("s.1.g.mul")([body, gate])
    h = run("s.2.wide.conv", "s.2.wide.relu", "s.2.body.conv", x=h)
    h = run("s.3.body.conv", x=h)
    inner = run("p.inner.0.body.conv", x=h)
    inner = run("p.inner.1.body.conv", x=inner)
    h = model.get_layer("p.merge.add")([inner, h])
    return run("head.global_avgpool", "head.flatten", "head.dense", x=h)


def test_blocks_are_builder_functions_and_compute_as_the_spec_says(compiled):
    out = compiled(CONDITIONAL)
    text = (out.dir / "model.py").read_text()
    assert "def unit(x, layers, in_channels, w, gated):" in text
    assert "def pair(x, layers):" in text and "partial(" in text
    model = out.module.build_model()
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype("float32")
    expected = np.asarray(by_hand(model, x))
    assert np.allclose(np.asarray(model(x, training=False)), expected, atol=1e-5)


def test_builder_calls_keep_the_layer_names_of_the_spec(compiled):
    """The same layers, by name, as the report lists (besides a conv's explicit padding)."""
    out = compiled(CONDITIONAL)
    model = out.module.build_model()
    names = {n.name for n in model.layers if "." in n.name and not n.name.endswith("_pad")}
    assert names == {layer.name for layer in out.checked.report.layers}
