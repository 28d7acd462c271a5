"""LocalResponseNorm, the PyTorch-style padded pools and Resize against NumPy references."""

import math

import numpy as np
import pytest

keras = pytest.importorskip("keras")


def lrn_reference(x, size, alpha, beta, k):
    """The paper's LRN on channels-last x, window c - size//2 .. c + (size-1)//2, no 1/size."""
    channels = x.shape[-1]
    out = np.empty_like(x)
    for c in range(channels):
        lo, hi = max(0, c - size // 2), min(channels, c + (size - 1) // 2 + 1)
        out[..., c] = x[..., c] / (k + alpha * (x[..., lo:hi] ** 2).sum(-1)) ** beta
    return out


@pytest.fixture(scope="module")
def layers(load):
    """The runtime's layers module."""
    return load("layers")


@pytest.fixture(scope="module")
def activations():
    """Random NHWC activations large enough that alpha vs alpha/size matters."""
    return np.random.default_rng(0).normal(scale=40.0, size=(2, 5, 4, 12)).astype("float32")


@pytest.mark.parametrize("size", [1, 2, 4, 5, 13])  # 13: wider than the 12 channels
def test_lrn_matches_paper_formula(layers, activations, size):
    got = np.asarray(layers.LocalResponseNorm(size, 1e-4, 0.75, 2.0)(activations))
    np.testing.assert_allclose(got, lrn_reference(activations, size, 1e-4, 0.75, 2.0), rtol=1e-5)
    torch_style = lrn_reference(activations, size, 1e-4 / size, 0.75, 2.0)
    assert size == 1 or not np.allclose(got, torch_style, rtol=1e-2)  # alpha / 1 == alpha


@pytest.mark.parametrize("size", [4, 5])
def test_lrn_in_float64_is_the_paper_formula_to_float64_precision(layers, activations, size):
    x = activations.astype("float64")
    got = layers.LocalResponseNorm(size, 1e-4, 0.75, 2.0, dtype="float64")(x)
    assert keras.backend.standardize_dtype(got.dtype) == "float64"
    np.testing.assert_allclose(np.asarray(got), lrn_reference(x, size, 1e-4, 0.75, 2.0), rtol=1e-12)


def test_lrn_under_mixed_bfloat16_returns_bf16_within_bf16_tolerance(layers, activations):
    x = keras.ops.cast(activations, "bfloat16")
    want = lrn_reference(np.asarray(keras.ops.cast(x, "float64")), 5, 1e-4, 0.75, 2.0)
    got = layers.LocalResponseNorm(5, 1e-4, 0.75, 2.0, dtype="mixed_bfloat16")(x)
    assert keras.backend.standardize_dtype(got.dtype) == "bfloat16"
    got = np.asarray(keras.ops.cast(got, "float64"))
    np.testing.assert_allclose(got, want, rtol=2e-2, atol=1e-3)


def test_lrn_sums_its_windows_in_one_matmul(layers, activations):
    """One MatMul by the banded channel matrix, no pads or shifted slices (TensorFlow ops of
    the traced forward)."""
    tf = pytest.importorskip("tensorflow")
    if keras.backend.backend() != "tensorflow":
        pytest.skip("traces TensorFlow graphs")
    layer = layers.LocalResponseNorm(5, 1e-4, 0.75, 2.0)
    graph = tf.function(layer).get_concrete_function(tf.TensorSpec(activations.shape)).graph
    kinds = [op.type for op in graph.get_operations()]
    assert kinds.count("MatMul") + kinds.count("BatchMatMulV2") == 1, kinds
    assert not {"Pad", "PadV2", "StridedSlice", "Slice"} & set(kinds), kinds


def test_lrn_groups_keep_halves_apart(layers, activations):
    got = np.asarray(layers.LocalResponseNorm(5, 1e-4, 0.75, 2.0, groups=2)(activations))
    halves = [lrn_reference(h, 5, 1e-4, 0.75, 2.0) for h in np.split(activations, 2, axis=-1)]
    np.testing.assert_allclose(got, np.concatenate(halves, axis=-1), rtol=1e-5)


def test_layers_survive_a_saved_model(layers, activations, tmp_path):
    inputs = keras.Input(activations.shape[1:])
    x = layers.LocalResponseNorm(3, 1e-3, 0.5, 1.0, groups=2, name="lrn")(inputs)
    x = layers.PaddedMaxPool2D(2, 1, padding=((1, 0), (0, 1)), ceil_mode=True, name="max")(x)
    x = layers.PaddedAvgPool2D(3, 2, padding=1, ceil_mode=True, count_include_pad=False)(x)
    model = keras.Model(inputs, x)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert loaded.get_layer("lrn").get_config()["alpha"] == 1e-3
    assert loaded.get_layer("max").padding == ((1, 0), (0, 1))
    np.testing.assert_allclose(np.asarray(loaded(activations)), np.asarray(model(activations)))


def torch_out(n, k, s, p, ceil):
    """Output length by PyTorch's pooling formula."""
    out = (math.ceil if ceil else math.floor)((n + 2 * p - k) / s) + 1
    return out - 1 if ceil and (out - 1) * s >= n + p else out


def pool_reference(x, k, s, p, ceil, mode, count_include_pad=True):
    """PyTorch's max_pool2d / avg_pool2d on NHWC x, written from its kernel's loops."""
    n_h, n_w = x.shape[1:3]
    out = np.empty(
        (x.shape[0], torch_out(n_h, k, s, p, ceil), torch_out(n_w, k, s, p, ceil), x.shape[3]),
        "float32",
    )
    for i in range(out.shape[1]):
        for j in range(out.shape[2]):
            hs, ws = i * s - p, j * s - p
            he, we = min(hs + k, n_h + p), min(ws + k, n_w + p)
            padded_count = (he - hs) * (we - ws)
            hs, ws, he, we = max(hs, 0), max(ws, 0), min(he, n_h), min(we, n_w)
            window = x[:, hs:he, ws:we, :]
            if mode == "max":
                out[:, i, j] = window.max(axis=(1, 2))
            else:
                count = padded_count if count_include_pad else (he - hs) * (we - ws)
                out[:, i, j] = window.sum(axis=(1, 2)) / count
    return out


POOLS = [  # (input, kernel, stride, pad, ceil, expected output)
    (13, 3, 2, 0, True, 6),
    (14, 3, 2, 0, True, 7),
    (55, 3, 2, 0, True, 27),
    (8, 3, 2, 1, True, 5),
    (6, 2, 2, 1, True, 4),
    (7, 3, 2, 1, False, 4),
    (14, 3, 2, 0, False, 6),
]


@pytest.mark.parametrize(("n", "k", "s", "p", "ceil", "expected"), POOLS)
def test_padded_max_pool(layers, n, k, s, p, ceil, expected):
    x = np.random.default_rng(n).normal(size=(2, n, n, 3)).astype("float32") - 3.0
    got = np.asarray(layers.PaddedMaxPool2D(k, s, padding=p, ceil_mode=ceil)(x))
    assert got.shape == (2, expected, expected, 3)
    np.testing.assert_allclose(got, pool_reference(x, k, s, p, ceil, "max"), rtol=1e-6)


@pytest.mark.parametrize("include", [True, False])
@pytest.mark.parametrize(("n", "k", "s", "p", "ceil", "expected"), POOLS)
def test_padded_avg_pool(layers, n, k, s, p, ceil, expected, include):
    x = np.random.default_rng(n).normal(size=(2, n, n, 3)).astype("float32") + 2.0
    pool = layers.PaddedAvgPool2D(k, s, padding=p, ceil_mode=ceil, count_include_pad=include)
    got = np.asarray(pool(x))
    assert got.shape == (2, expected, expected, 3)
    want = pool_reference(x, k, s, p, ceil, "avg", include)
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_asymmetric_pool_padding(layers):
    x = np.random.default_rng(1).normal(size=(1, 6, 6, 2)).astype("float32") - 3.0
    got = np.asarray(layers.PaddedMaxPool2D(2, 2, padding=((1, 0), (0, 1)))(x))
    padded = np.pad(x, [(0, 0), (1, 0), (0, 1), (0, 0)], constant_values=-np.inf)
    want = padded[:, :6, :6].reshape(1, 3, 2, 3, 2, 2).max(axis=(2, 4))
    np.testing.assert_allclose(got, want)


def interpolation_matrix(n_in, n_out, mode):
    """The (n_out, n_in) matrix of half-pixel-centre resampling along one axis: each row holds
    the weights of the input samples that output sample reads (torch's interpolate rules)."""
    matrix = np.zeros((n_out, n_in))
    for i in range(n_out):
        centre = (i + 0.5) * n_in / n_out
        if mode == "nearest":
            matrix[i, min(int(centre), n_in - 1)] = 1.0
            continue
        source = min(max(centre - 0.5, 0.0), n_in - 1)
        low = int(source)
        matrix[i, low] += 1 - (source - low)
        matrix[i, min(low + 1, n_in - 1)] += source - low
    return matrix


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
@pytest.mark.parametrize(
    ("size_in", "size_out"), [((9, 7), (13, 16)), ((32, 32), (224, 224)), ((9, 7), (4, 3))]
)
def test_resize_in_float64_is_exact(layers, mode, size_in, size_out):
    """Resize computes in the input's dtype: float64 agrees with NumPy to rounding, where
    Keras's own Resizing (float32 inside on TensorFlow) is ~1e-7 off for bilinear."""
    x = np.random.default_rng(2).normal(size=(2, *size_in, 3)) * 1.234567891
    rows, cols = (interpolation_matrix(n, m, mode) for n, m in zip(size_in, size_out, strict=True))
    want = np.einsum("oh,nhwc,pw->nopc", rows, x, cols)
    layer = layers.Resize(*size_out, interpolation=mode, dtype="float64")
    got = np.asarray(layer(x))
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-13)  # sample positions round apart
    if mode == "bilinear":
        keras_own = keras.layers.Resizing(*size_out, interpolation=mode, dtype="float64")(x)
        assert np.abs(np.asarray(keras_own) - want).max() > 1e-9


def test_resize_survives_a_saved_model(layers, tmp_path):
    inputs = keras.Input((5, 6, 2))
    model = keras.Model(inputs, layers.Resize(8, 3, interpolation="nearest", name="r")(inputs))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert loaded.get_layer("r").get_config()["interpolation"] == "nearest"
    x = np.random.default_rng(3).normal(size=(1, 5, 6, 2)).astype("float32")
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(model(x)))
