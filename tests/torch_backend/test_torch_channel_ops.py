"""mul and add with broadcasting, chunk and channel_shuffle against NumPy (and torchvision)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")


def run(compiled, source, x):
    """The compiled spec's model on x (float32), in eval mode, as float64 NumPy."""
    model = compiled(source).module.build_model().eval()
    with torch.no_grad():
        return model(torch.as_tensor(x, dtype=torch.float32)).numpy().astype(np.float64)


def sample(*shape):
    """Gaussian data that float32 holds exactly."""
    return np.random.default_rng(0).normal(size=shape).astype(np.float32).astype(np.float64)


def np_shuffle(x, groups):
    """torchvision's channel_shuffle written in NumPy: (N, g, C/g, H, W) transposed."""
    n, c, h, w = x.shape
    return x.reshape(n, groups, c // groups, h, w).transpose(0, 2, 1, 3, 4).reshape(n, c, h, w)


def test_a_gate_broadcasts_over_the_map_in_mul_and_add(compiled):
    source = """model T
input image: 6 x 4 x 5
gate = global_avgpool |> sigmoid
gated = mul(image, gate)
out = add(gated, gate, image)  expect 6 x 4 x 5
"""
    x = sample(2, 6, 4, 5)
    gate = 1 / (1 + np.exp(-x.mean(axis=(2, 3), keepdims=True)))
    np.testing.assert_allclose(run(compiled, source, x), x * gate + gate + x, rtol=1e-5, atol=1e-6)


def test_rows_and_columns_broadcast_too(compiled):
    source = """model T
input image: 2 x 4 x 3
rows = avgpool(1 x 3) expect 2 x 4 x 1
cols = avgpool(4 x 1) from image expect 2 x 1 x 3
out = mul(rows, cols) expect 2 x 4 x 3
"""
    x = sample(3, 2, 4, 3)
    want = x.mean(axis=3, keepdims=True) * x.mean(axis=2, keepdims=True)
    np.testing.assert_allclose(run(compiled, source, x), want, rtol=1e-5, atol=1e-6)


def test_chunk_and_channel_shuffle(compiled):
    from torchvision.models.shufflenetv2 import channel_shuffle

    source = """model T
input image: 6 x 3 x 3
middle = chunk(3, part=1)
shuffled = channel_shuffle(3) from image
out = concat(middle, shuffled) expect 8 x 3 x 3
"""
    x = sample(2, 6, 3, 3)
    got = run(compiled, source, x)
    np.testing.assert_array_equal(got[:, :2], x[:, 2:4])
    np.testing.assert_array_equal(got[:, 2:], np_shuffle(x, 3))
    theirs = channel_shuffle(torch.as_tensor(x, dtype=torch.float32), 3).numpy()
    np.testing.assert_array_equal(got[:, 2:], theirs)


def test_chunk_of_a_vector_takes_its_features(compiled):
    source = "model T\ninput v: 6\nout = chunk(2, part=1) expect 3\n"
    x = sample(4, 6)
    np.testing.assert_array_equal(run(compiled, source, x), x[:, 3:])


def test_shuffle_unit_trains_through_both_halves(compiled):
    """The gradient reaches the conv that reads only the second chunk."""
    source = """model T
input image: 4 x 5 x 5
left = chunk(2, part=0)
right = chunk(2, part=1) |> conv(2, kernel=1) |> relu from image
out = concat(left, right) |> channel_shuffle(2) |> global_avgpool |> flatten |> dense(3)
"""
    model = compiled(source).module.build_model()
    model(torch.as_tensor(sample(2, 4, 5, 5), dtype=torch.float32)).sum().backward()
    assert model.right.conv.weight.grad.abs().sum() > 0
