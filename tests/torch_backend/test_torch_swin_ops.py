"""Swin's ops in PyTorch (issue 13) against NumPy (tests/op_reference/window_ops.py) and
torchvision's own modules: window_attention (padded, shifted or not) and space_to_depth;
their counts. The pocket Swin and Swin-T against torchvision are tests/torch_zoo's."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "op_reference"))
from window_ops import space_to_depth, window_attention  # noqa: E402

torch = pytest.importorskip("torch")


def spec(input_shape, body):
    """A one-input spec around statement lines."""
    return f"model T\ninput image: {input_shape}\n{body}\n"


def randomise(module, seed=1):
    """Every parameter drawn from N(0, 0.5^2), so that biases and the bias table show."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=generator))


def run(model, x):
    """The model in eval mode on a channels-last float64 NumPy batch, channels-last out."""
    with torch.no_grad():
        y = model.eval()(torch.as_tensor(x.transpose(0, 3, 1, 2), dtype=torch.float32))
    return y.numpy().astype(np.float64).transpose(0, 2, 3, 1)


def arrays(module):
    """The module's state as float64 NumPy arrays."""
    return {k: v.numpy().astype(np.float64) for k, v in module.state_dict().items()}


@pytest.mark.parametrize(
    "shape, heads, window, shift",
    [
        ("8 x 9 x 9", 2, 4, 2),  # padded to 12 x 12, shifted
        ("6 x 5 x 7", 3, 3, 1),  # padded to 6 x 9, shifted, three heads
        ("4 x 8 x 8", 1, 4, 0),  # whole windows, not shifted
        ("4 x 4 x 6", 2, 4, 2),  # a window covers the rows: shifted along the columns only
    ],
)
def test_window_attention_is_the_numpy_reference(compiled, shape, heads, window, shift):
    body = f"a = window_attention({heads}, window={window}, shift={shift})"
    model = compiled(spec(shape, body)).module.build_model()
    attention = model.a.window_attention
    randomise(attention)
    c, h, w = map(int, shape.split(" x "))
    x = np.random.default_rng(0).normal(size=(2, h, w, c))
    expected = window_attention(x, arrays(attention), heads, window, shift)
    np.testing.assert_allclose(run(model, x), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("shape, block", [("3 x 5 x 7", 2), ("2 x 6 x 4", 2), ("2 x 7 x 5", 3)])
def test_space_to_depth_is_the_numpy_reference(compiled, shape, block):
    model = compiled(spec(shape, f"s = space_to_depth({block})")).module.build_model()
    c, h, w = map(int, shape.split(" x "))
    x = np.random.default_rng(1).normal(size=(2, h, w, c))
    np.testing.assert_allclose(run(model, x), space_to_depth(x, block), rtol=0, atol=1e-6)


def test_window_attention_is_torchvisions_and_starts_as_it_does(compiled):
    """torchvision's ShiftedWindowAttention on the same tensors gives the same numbers; the
    state holds exactly its tensors but the derived index; biases start at 0, the rest at
    std 0.02."""
    swin = pytest.importorskip("torchvision.models.swin_transformer")
    body = "a = window_attention(4, window=7, shift=3)"
    model = compiled(spec("32 x 14 x 11", body)).module.build_model()
    ours = model.a.window_attention
    theirs = swin.ShiftedWindowAttention(32, [7, 7], [3, 3], 4).eval()
    state = {k: v for k, v in theirs.state_dict().items() if k != "relative_position_index"}
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in state.items()
    }
    assert not ours.qkv.bias.any() and not ours.proj.bias.any()
    for tensor in (ours.qkv.weight, ours.relative_position_bias_table):
        assert 0.017 < tensor.std().item() < 0.023
    randomise(theirs)
    ours.load_state_dict({k: v for k, v in theirs.state_dict().items() if k in state})
    x = torch.randn(2, 14, 11, 32)
    with torch.no_grad():
        expected = theirs(x)
        got = model.eval()(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_window_attention_macs_are_half_the_flop_counters_flops(compiled):
    """Projections and both window products, counted over the padded map."""
    flop_counter = pytest.importorskip("torch.utils.flop_counter")
    checked = compiled(spec("8 x 9 x 9", "a = window_attention(2, window=4, shift=2)"))
    model = checked.module.build_model().eval()
    counter = flop_counter.FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.randn(3, 8, 9, 9))
    assert checked.checked.report.total_macs == 144 * (4 * 64 + 2 * 16 * 8)
    assert counter.get_total_flops() == 2 * 3 * checked.checked.report.total_macs


@pytest.mark.parametrize("shape, shift", [("12 x 9 x 9", 2), ("12 x 8 x 8", 0)])
def test_the_fused_attention_of_gpus_is_the_explicit_one(compiled, shape, shift):
    """scaled_dot_product_attention (what a GPU runs) gives the explicit form's values and
    gradients, the position bias and the shift mask included; checked here on the CPU."""
    body = f"a = window_attention(3, window=4, shift={shift})"
    attention = compiled(spec(shape, body)).module.build_model().a.window_attention
    randomise(attention)
    q, k, v = (torch.randn(2 * 9, 3, 16, 4, requires_grad=True) for _ in range(3))
    results = []
    for form in (attention.explicit, attention.fused):
        out = form(q, k, v)
        inputs = [q, k, v, attention.relative_position_bias_table]
        grads = torch.autograd.grad(out.square().sum(), inputs)
        results.append((out, *grads))
    for explicit, fused in zip(*results, strict=True):
        torch.testing.assert_close(fused, explicit, rtol=1e-4, atol=1e-5)
