"""mul and add with broadcasting, chunk and channel_shuffle against NumPy (channels-last)."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")


def run(compiled, source, x):
    """The compiled spec's model on x (float32), as float64 NumPy."""
    model = compiled(source).module.build_model()
    return np.asarray(model(x.astype("float32"), training=False), dtype="float64")


def sample(*shape):
    """Gaussian data that float32 holds exactly."""
    return np.random.default_rng(0).normal(size=shape).astype(np.float32).astype(np.float64)


def np_shuffle_nhwc(x, groups):
    """torchvision's channel_shuffle on N, H, W, C data: channel g * (C/g) + i moves to i * g + g."""
    c = x.shape[-1]
    per = c // groups
    order = [g * per + i for i in range(per) for g in range(groups)]
    return x[..., order]


def test_a_gate_broadcasts_over_the_map_in_mul_and_add(compiled):
    source = """model T
input image: 6 x 4 x 5
gate = global_avgpool |> sigmoid
gated = mul(image, gate)
out = add(gated, gate, image)  expect 6 x 4 x 5
"""
    x = sample(2, 4, 5, 6)
    gate = 1 / (1 + np.exp(-x.mean(axis=(1, 2), keepdims=True)))
    np.testing.assert_allclose(run(compiled, source, x), x * gate + gate + x, rtol=1e-5, atol=1e-6)


def test_rows_and_columns_broadcast_too(compiled):
    source = """model T
input image: 2 x 4 x 3
rows = avgpool(1 x 3) expect 2 x 4 x 1
cols = avgpool(4 x 1) from image expect 2 x 1 x 3
out = mul(rows, cols) expect 2 x 4 x 3
"""
    x = sample(3, 4, 3, 2)
    want = x.mean(axis=2, keepdims=True) * x.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(run(compiled, source, x), want, rtol=1e-5, atol=1e-6)


def test_chunk_and_channel_shuffle(compiled):
    source = """model T
input image: 6 x 3 x 3
middle = chunk(3, part=1)
shuffled = channel_shuffle(3) from image
out = concat(middle, shuffled) expect 8 x 3 x 3
"""
    x = sample(2, 3, 3, 6)
    got = run(compiled, source, x)
    np.testing.assert_array_equal(got[..., :2], x[..., 2:4])
    np.testing.assert_array_equal(got[..., 2:], np_shuffle_nhwc(x, 3))


def test_chunk_of_a_vector_takes_its_features(compiled):
    source = "model T\ninput v: 6\nout = chunk(2, part=1) expect 3\n"
    x = sample(4, 6)
    np.testing.assert_array_equal(run(compiled, source, x), x[:, 3:])


def test_chunk_of_a_flattened_map_takes_the_specs_features(compiled):
    """Features of a flattened map are in C, H, W order: chunk slices them in that order."""
    source = "model T\ninput image: 2 x 2 x 3\nout = flatten |> chunk(2, part=1) expect 6\n"
    x = sample(3, 2, 3, 2)
    chw = x.transpose(0, 3, 1, 2).reshape(3, -1)
    np.testing.assert_array_equal(run(compiled, source, x), chw[:, 6:])


def test_a_one_channel_gate_is_not_taken_for_a_bias(compiled):
    """A batch as large as the map's height (or the vector's features): Keras's own add
    would add the gate along the wrong axis."""
    source = "model T\ninput image: 1 x 4 x 1\ngate = global_avgpool\nout = add(image, gate)\n"
    x = sample(4, 4, 1, 1)
    np.testing.assert_allclose(
        run(compiled, source, x), x + x.mean(axis=(1, 2), keepdims=True), rtol=1e-5, atol=1e-6
    )
    source = "model T\ninput v: 4\nfirst = chunk(4, part=0)\nout = mul(v, first)\n"
    v = sample(4, 4)
    np.testing.assert_allclose(run(compiled, source, v), v * v[:, :1], rtol=1e-5, atol=1e-6)
