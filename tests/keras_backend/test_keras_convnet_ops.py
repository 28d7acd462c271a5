"""Issue 12's ops in Keras against NumPy (tests/op_reference): the new activations, layer norm
on a map and a vector, layer scale, stochastic depth; counts and the portable tensors."""

import sys
from pathlib import Path

import numpy as np
import pytest

from archdsl.weights import expected_tensors

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "op_reference"))
from convnet_ops import ACTIVATIONS, activation_inputs, layer_scale, layernorm  # noqa: E402

keras = pytest.importorskip("keras")


def spec(input_shape, body):
    """A one-input spec around statement lines."""
    return f"model T\ninput image: {input_shape}\n{body}\n"


def run(model, x, training=False):
    """The model on a float64 NumPy batch (computed in float32), as float64."""
    return np.asarray(model(x.astype("float32"), training=training), dtype="float64")


@pytest.mark.parametrize("op", sorted(ACTIVATIONS))
def test_activations(compiled, op):
    """Keras's own silu, hard_swish, hard_sigmoid and mish, and the runtime's gelu, are the
    definitions PyTorch uses (Keras 2's hard_sigmoid, 0.2x + 0.5, would fail here)."""
    x = activation_inputs((2, 4, 5, 3))
    model = compiled(spec("3 x 4 x 5", f"a = {op}")).module.build_model()
    np.testing.assert_allclose(run(model, x), ACTIVATIONS[op](x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_is_exact_in_float64(compiled, approximate):
    """The runtime's gelu keeps float64 precision (keras.ops.gelu is off by ~5e-9 there, which
    showed in the float64 training comparison of the backends)."""
    gelu = compiled(spec("3", f"a = gelu(approximate={approximate})")).module.Gelu
    x = activation_inputs((4, 250)).astype("float64")
    y = np.asarray(gelu(approximate == "tanh", dtype="float64")(x))
    reference = ACTIVATIONS[f"gelu(approximate={approximate})"](x)
    np.testing.assert_allclose(y, reference, rtol=1e-14, atol=1e-14)


def randomise(model):
    """Every float weight drawn at random (a norm's scale around 1), so scales and shifts show."""
    rng = np.random.default_rng(1)
    for weight in model.weights:
        weight.assign(1.0 + 0.5 * rng.normal(size=weight.shape))


def weight(model, name, index):
    return np.asarray(model.get_layer(name).get_weights()[index], dtype="float64")


def test_layernorm_normalises_the_channels_of_each_position_of_a_map(compiled):
    model = compiled(spec("6 x 3 x 4", "n = layernorm(eps=0.01)")).module.build_model()
    assert np.all(weight(model, "n.layernorm", 0) == 1) and np.all(
        weight(model, "n.layernorm", 1) == 0
    )
    randomise(model)
    x = np.random.default_rng(0).normal(2.0, 3.0, size=(2, 3, 4, 6))  # channels last
    gamma, beta = weight(model, "n.layernorm", 0), weight(model, "n.layernorm", 1)
    expected = layernorm(x, gamma, beta, 0.01, axis=-1)
    np.testing.assert_allclose(run(model, x), expected, rtol=1e-5, atol=1e-5)


def test_layernorm_of_a_vector_normalises_its_features(compiled):
    model = compiled(spec("10", "n = layernorm")).module.build_model()
    randomise(model)
    x = np.random.default_rng(1).normal(-1.0, 2.0, size=(3, 10))
    gamma, beta = weight(model, "n.layernorm", 0), weight(model, "n.layernorm", 1)
    expected = layernorm(x, gamma, beta, 1e-5, axis=-1)
    np.testing.assert_allclose(run(model, x), expected, rtol=1e-5, atol=1e-5)


def test_layer_scale_starts_at_init_and_scales_each_channel(compiled):
    model = compiled(spec("3 x 2 x 2", "m = layer_scale(init=0.25)")).module.build_model()
    np.testing.assert_array_equal(weight(model, "m.layer_scale", 0), [0.25] * 3)
    randomise(model)
    x = np.random.default_rng(2).normal(size=(2, 2, 2, 3))
    expected = layer_scale(x, weight(model, "m.layer_scale", 0), axis=-1)
    np.testing.assert_allclose(run(model, x), expected, rtol=1e-6)


DEPTH = "s = conv(2, kernel=1) |> stochastic_depth({p})\nout = add(s, image)"


def test_stochastic_depth_is_the_identity_in_eval(compiled):
    model = compiled(spec("2 x 3 x 3", DEPTH.format(p=0.9))).module.build_model()
    x = np.random.default_rng(3).normal(size=(4, 3, 3, 2))
    conv = np.asarray(model.get_layer("s.conv")(x.astype("float32")), dtype="float64")
    np.testing.assert_allclose(run(model, x), conv + x, rtol=1e-6, atol=1e-6)


def test_stochastic_depth_drops_whole_examples_with_probability_p(compiled):
    model = compiled(spec("2 x 3 x 3", "d = stochastic_depth(0.25)")).module.build_model()
    x = np.random.default_rng(4).uniform(1.0, 2.0, size=(4000, 3, 3, 2))
    y = run(model, x, training=True).reshape(4000, -1)
    flat = x.reshape(4000, -1)
    dropped = np.all(y == 0, axis=1)
    kept = ~dropped
    assert np.all(np.any(y != 0, axis=1) == kept)  # a row is zeroed whole or not at all
    assert abs(dropped.mean() - 0.25) < 0.03
    np.testing.assert_allclose(y[kept], flat[kept] / 0.75, rtol=1e-6)


def test_stochastic_depth_with_one_seed_draws_one_mask(compiled):
    """The mask follows Keras's seed: the same seed gives the same examples dropped."""
    source = spec("2 x 3 x 3", "d = stochastic_depth(0.5)")
    x = np.random.default_rng(5).uniform(1.0, 2.0, size=(64, 3, 3, 2))
    outputs = []
    for seed in (7, 7, 8):
        keras.utils.set_random_seed(seed)
        outputs.append(run(compiled(source).module.build_model(), x, training=True))
    np.testing.assert_array_equal(outputs[0], outputs[1])
    assert not np.array_equal(outputs[0], outputs[2])


@pytest.mark.parametrize("p, expected", [(0.0, 1.0), (1.0, 0.0)])
def test_stochastic_depth_edge_probabilities(compiled, p, expected):
    """p = 0 keeps every example unscaled, p = 1 zeroes them all (torchvision's edges)."""
    model = compiled(spec("2 x 3 x 3", f"d = stochastic_depth({p})")).module.build_model()
    x = np.random.default_rng(6).uniform(1.0, 2.0, size=(16, 3, 3, 2))
    np.testing.assert_array_equal(run(model, x, training=True), expected * x.astype("float32"))


SMALL = """
model Small
input image: 3 x 8 x 8
stem = conv(8, kernel=2, stride=2) |> layernorm(eps=1e-6)
branch = conv(8, kernel=3, pad=1, groups=8) |> layernorm |> conv(16, kernel=1) |> gelu
       |> conv(8, kernel=1) |> layer_scale |> stochastic_depth(0.1)
unit = add(branch, stem) |> hardswish
head = flatten |> layernorm |> layer_scale(0.5) |> dense(5) |> silu |> mish |> hardsigmoid
"""


def test_shapes_counts_are_the_built_models_and_the_portable_tensors(compiled):
    """`archdsl shapes` counts what Keras builds; the portable file holds the spec's tensors,
    a flattened map's layer norm and layer scale in C, H, W order."""
    out = compiled(SMALL)
    report, model = out.checked.report, out.module.build_model()
    built = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert report.trainable_params == report.total_params == built
    arrays = out.module.save_weights.__globals__["state_arrays"](model)
    assert {n: a.shape for n, a in arrays.items()} == expected_tensors(report)
    scale = weight(model, "head.layer_scale", 0)  # keras order: H, W, C of the 8 x 4 x 4 map
    keras_order = np.arange(128).reshape(8, 4, 4).transpose(1, 2, 0).reshape(-1)
    np.testing.assert_array_equal(arrays["head.layer_scale.scale"][keras_order], scale)
