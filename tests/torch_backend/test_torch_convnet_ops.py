"""Issue 12's ops in PyTorch against NumPy (tests/op_reference) and torchvision: the new
activations, layer norm on a map and a vector, layer scale, stochastic depth; counts. ConvNeXt-T
itself is specs/zoo/convnext_tiny.arch, compared with torchvision by tests/torch_zoo."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "op_reference"))
from convnet_ops import ACTIVATIONS, activation_inputs, layer_scale, layernorm  # noqa: E402

torch = pytest.importorskip("torch")


def spec(input_shape, body):
    """A one-input spec around statement lines."""
    return f"model T\ninput image: {input_shape}\n{body}\n"


def run(model, x, training=False):
    """The model on a float64 NumPy batch (computed in float32), as float64."""
    model.train(training)
    with torch.no_grad():
        y = model(torch.as_tensor(x, dtype=torch.float32))
    return y.numpy().astype(np.float64)


@pytest.mark.parametrize("op", sorted(ACTIVATIONS))
def test_activations(compiled, op):
    x = activation_inputs((2, 3, 4, 5))
    model = compiled(spec("3 x 4 x 5", f"a = {op}")).module.build_model()
    np.testing.assert_allclose(run(model, x), ACTIVATIONS[op](x), rtol=1e-5, atol=1e-6)


def test_in_place_activations_after_a_conv_train(compiled):
    """silu, hardswish, hardsigmoid and mish run in place on a conv's output: backward works
    and gives the gradient of the same model run out of place."""
    body = "a = conv(4, kernel=1) |> silu\nb = conv(4, kernel=1) |> hardswish |> mish\n"
    body += "c = conv(4, kernel=1) |> hardsigmoid |> flatten |> dense(2)"
    model = compiled(spec("3 x 4 x 4", body)).module.build_model()
    assert [m.inplace for m in (model.a.silu, model.b.hardswish, model.c.hardsigmoid)] == [True] * 3
    x = torch.randn(2, 3, 4, 4)
    model(x).sum().backward()
    in_place = [p.grad.clone() for p in model.parameters()]
    for module in model.modules():
        if hasattr(module, "inplace"):
            module.inplace = False
    model.zero_grad()
    model(x).sum().backward()
    for a, p in zip(in_place, model.parameters(), strict=True):
        torch.testing.assert_close(a, p.grad)


def randomise(model):
    """Every parameter drawn at random (a norm's scale around 1), so scales and shifts show."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(1.0 + 0.5 * torch.randn(p.shape, generator=generator))


def values(tensor):
    return tensor.detach().numpy().astype(np.float64)


def test_layernorm_normalises_the_channels_of_each_position_of_a_map(compiled):
    model = compiled(spec("6 x 3 x 4", "n = layernorm(eps=0.01)")).module.build_model()
    norm = model.n.layernorm
    assert torch.all(norm.weight == 1) and torch.all(norm.bias == 0)
    randomise(model)
    x = np.random.default_rng(0).normal(2.0, 3.0, size=(2, 6, 3, 4))
    expected = layernorm(x, values(norm.weight), values(norm.bias), 0.01, axis=1)
    np.testing.assert_allclose(run(model, x), expected, rtol=1e-5, atol=1e-5)


def test_layernorm_of_a_vector_normalises_its_features(compiled):
    model = compiled(spec("10", "n = layernorm")).module.build_model()
    norm = model.n.layernorm
    assert isinstance(norm, torch.nn.LayerNorm) and norm.eps == 1e-5
    randomise(model)
    x = np.random.default_rng(1).normal(-1.0, 2.0, size=(3, 10))
    expected = layernorm(x, values(norm.weight), values(norm.bias), 1e-5, axis=1)
    np.testing.assert_allclose(run(model, x), expected, rtol=1e-5, atol=1e-5)


def test_layernorm_on_a_map_is_torchvisions_layernorm2d(compiled):
    """The same numbers as torchvision's LayerNorm2d (ConvNeXt's stem and downsampling)."""
    convnext = pytest.importorskip("torchvision.models.convnext")
    model = compiled(spec("8 x 5 x 5", "n = layernorm(eps=1e-6)")).module.build_model()
    randomise(model)
    reference = convnext.LayerNorm2d(8, eps=1e-6)
    reference.load_state_dict(model.n.layernorm.state_dict())
    x = torch.randn(2, 8, 5, 5)
    torch.testing.assert_close(model(x), reference(x), rtol=0, atol=0)


def test_layer_scale_starts_at_init_and_scales_each_channel(compiled):
    body = "m = layer_scale(init=0.25)\nv = flatten |> layer_scale"
    model = compiled(spec("3 x 2 x 2", body)).module.build_model()
    assert torch.all(model.m.layer_scale.scale == 0.25) and model.m.layer_scale.scale.shape == (3,)
    assert torch.all(model.v.layer_scale.scale == 1e-6) and model.v.layer_scale.scale.shape == (12,)
    randomise(model)
    x = np.random.default_rng(2).normal(size=(2, 3, 2, 2))
    scaled = layer_scale(x, values(model.m.layer_scale.scale), axis=1)
    expected = layer_scale(scaled.reshape(2, 12), values(model.v.layer_scale.scale), axis=1)
    np.testing.assert_allclose(run(model, x), expected, rtol=1e-6)


DEPTH = "s = conv(2, kernel=1) |> stochastic_depth({p})\nout = add(s, image)"


def test_stochastic_depth_is_the_identity_in_eval(compiled):
    model = compiled(spec("2 x 3 x 3", DEPTH.format(p=0.9))).module.build_model()
    x = torch.randn(4, 2, 3, 3)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), model.s.conv(x) + x, rtol=0, atol=0)


@pytest.mark.parametrize("p", [0.0, 0.3, 1.0])
def test_stochastic_depth_draws_torchvisions_mask(compiled, p):
    """With one seed, the same per-example mask as torchvision.ops.stochastic_depth (row)."""
    ops = pytest.importorskip("torchvision.ops")
    model = compiled(spec("3 x 4 x 4", f"d = stochastic_depth({p})")).module.build_model()
    x = torch.randn(64, 3, 4, 4)
    torch.manual_seed(5)
    ours = model.train()(x)
    torch.manual_seed(5)
    torch.testing.assert_close(ours, ops.stochastic_depth(x, p, "row", True), rtol=0, atol=0)


def test_stochastic_depth_drops_whole_examples_with_probability_p(compiled):
    model = compiled(spec("2 x 3 x 3", "d = stochastic_depth(0.25)")).module.build_model()
    torch.manual_seed(0)
    x = torch.rand(4000, 2, 3, 3) + 1.0
    y = run(model, x.numpy(), training=True).reshape(4000, -1)
    flat = x.numpy().astype(np.float64).reshape(4000, -1)
    dropped = np.all(y == 0, axis=1)
    kept = ~dropped
    assert np.all(np.any(y != 0, axis=1) == kept)  # a row is zeroed whole or not at all
    assert abs(dropped.mean() - 0.25) < 0.03
    np.testing.assert_allclose(y[kept], flat[kept] / 0.75, rtol=1e-6)


SMALL = """
model Small
input image: 3 x 8 x 8
stem = conv(8, kernel=2, stride=2) |> layernorm(eps=1e-6)
branch = conv(8, kernel=3, pad=1, groups=8) |> layernorm |> conv(16, kernel=1) |> gelu
       |> conv(8, kernel=1) |> layer_scale |> stochastic_depth(0.1)
unit = add(branch, stem) |> hardswish
head = global_avgpool |> flatten |> layernorm |> dense(5) |> silu |> mish |> hardsigmoid
"""


def test_shapes_counts_are_the_built_models(compiled):
    out = compiled(SMALL)
    report, model = out.checked.report, out.module.build_model()
    built = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert report.trainable_params == report.total_params == built
    by_layer = {layer.name: layer.params for layer in report.layers}
    assert by_layer["stem.layernorm"] == 2 * 8 and by_layer["head.layernorm"] == 2 * 8
    assert by_layer["branch.layer_scale"] == 8
    assert all(layer.macs == 0 for layer in report.layers if layer.op not in ("conv", "dense"))
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 5)
