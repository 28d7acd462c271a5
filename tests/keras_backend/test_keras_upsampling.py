"""conv_transpose and upsample in Keras: the generated layers, fed PyTorch-layout weights through
the portable file, against NumPy references of the ops' definitions; counts and fans."""

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "upsampling_common"))
import upsampling_reference as ref  # noqa: E402

keras = pytest.importorskip("keras")


def spec(shape, op):
    return f"model T\ninput x: {shape}\ny = {op}\n"


def normal(seed, shape):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32).astype(np.float64)


def forward(model, x):
    """N, C, H, W in and out; the model runs channels-last."""
    y = model(x.transpose(0, 2, 3, 1).astype("float32"), training=False)
    return np.asarray(y, dtype="float64").transpose(0, 3, 1, 2)


@pytest.mark.parametrize(("shape", "op"), ref.CONV_TRANSPOSE_CASES)
def test_conv_transpose_is_the_scatter_of_its_definition(shape, op, compiled, tmp_path):
    """Weights in PyTorch's layout (in, filters / groups, kh, kw), loaded from a portable file,
    give the NumPy scatter's output, and save back unchanged."""
    out = compiled(spec(shape, op))
    node = out.checked.graph.statements[0].ops[0]
    (layer,) = out.checked.report.layers
    model = out.module.build_model()
    assert model.count_params() == layer.params
    weight = normal(3, (layer.input_shape[0], node.filters // node.groups, *node.kernel))
    arrays = {"y.conv_transpose.weight": weight}
    if node.bias:
        arrays["y.conv_transpose.bias"] = normal(4, (node.filters,))
    np.savez(tmp_path / "w.npz", **arrays)
    out.module.load_weights(model, tmp_path / "w.npz")
    x = normal(1, (2, *layer.input_shape))
    y = forward(model, x)
    bias = arrays.get("y.conv_transpose.bias")
    expected = ref.conv_transpose(
        x, weight, bias, node.stride, node.pad, node.output_pad, node.dilation, node.groups
    )
    assert y.shape == expected.shape == (2, *layer.output_shape)
    np.testing.assert_allclose(y, expected, atol=1e-5 * np.abs(expected).max())
    out.module.save_weights(model, tmp_path / "back.npz")
    with np.load(tmp_path / "back.npz") as back:
        assert sorted(back) == sorted(arrays)
        for name, value in arrays.items():
            np.testing.assert_array_equal(back[name], value.astype(np.float32))


@pytest.mark.parametrize(("shape", "op"), ref.UPSAMPLE_CASES)
def test_upsample_matches_its_definition(shape, op, compiled):
    """Nearest reads floor(i / scale) exactly; bilinear as torch's nn.Upsample."""
    out = compiled(spec(shape, op))
    node = out.checked.graph.statements[0].ops[0]
    (layer,) = out.checked.report.layers
    x = normal(2, (2, *layer.input_shape))
    y = forward(out.module.build_model(), x)
    expected = ref.upsample(x, node.scale, node.mode, node.align_corners)
    assert y.shape == expected.shape == (2, *layer.output_shape)
    if node.mode == "nearest":
        np.testing.assert_array_equal(y, expected)
    else:
        np.testing.assert_allclose(y, expected, atol=1e-6)


def test_conv_transpose_draws_with_pytorchs_fans(compiled):
    """he_uniform's bound is sqrt(6 / fan_in) with torch's fan_in of the (in, filters / groups,
    kh, kw) weight: (filters / groups) * kh * kw = 32 * 9, not Keras's filters * kh * kw."""
    body = "conv_transpose(64, kernel=3, groups=2, weight=he_uniform, bias=fan_in_uniform)"
    model = compiled(spec("16 x 2 x 2", body)).module.build_model()
    kernel, bias = (np.asarray(w, "float64") for w in model.get_layer("y.conv_transpose").weights)
    assert kernel.shape == (3, 3, 32, 16)
    bound = math.sqrt(6.0 / (32 * 9))
    assert -bound <= kernel.min() < -0.99 * bound and 0.99 * bound < kernel.max() <= bound
    assert np.abs(bias).max() <= 1.0 / math.sqrt(32 * 9)
    assert np.abs(bias).max() > 0.8 / math.sqrt(32 * 9)


def test_counts_of_a_spec_equal_the_built_models(compiled):
    """Per layer and in total, the report's parameters are the Keras model's."""
    out = compiled(ref.TINY_UNET)
    model = out.module.build_model()
    names = {layer.name for layer in model.layers}
    for layer in out.checked.report.layers:
        held = model.get_layer(layer.name).count_params() if layer.name in names else 0
        assert layer.params == held, layer.name
    assert model.count_params() == out.checked.report.total_params
