"""Generated layers against NumPy references written from the IR's definitions."""

import math
from fractions import Fraction

import init_reference
import numpy as np
import pytest
from archdsl.backends.keras.emitter import render_model
from kerasgen import check

keras = pytest.importorskip("keras")


def spec(input_shape, body):
    """A one-input spec around statement lines."""
    return f"model T\ninput image: {input_shape}\n{body}\n"


def run(compiled, source, x, training=False):
    """Compile, build, and run a spec on x; returns (model, output as float64)."""
    model = compiled(source).module.build_model()
    return model, np.asarray(model(x.astype("float32"), training=training), dtype="float64")


def rand(*shape, scale=1.0, seed=0):
    return np.random.default_rng(seed).normal(scale=scale, size=shape)


# ----------------------------------------------------------------------------- references


def same_pads(size, kernel, stride, dilation=1):
    """TensorFlow's `same`: total padding for ceil(size / stride) outputs, the odd cell after."""
    reach = dilation * (kernel - 1) + 1
    total = max((math.ceil(size / stride) - 1) * stride + reach - size, 0)
    return total // 2, total - total // 2


def torch_out(size, kernel, stride, before, after, ceil, dilation=1, pool=True):
    """The spec's output length: a ceil-mode pool drops a last window that starts in the
    padding (PyTorch's rule); a ceil-mode conv rounds up and keeps it (cuda-convnet's)."""
    span = size + before + after - dilation * (kernel - 1) - 1
    out = (math.ceil(span / stride) if ceil else span // stride) + 1
    return out - 1 if pool and ceil and (out - 1) * stride >= size + before else out


def windows(x, kernel, stride, out, dilation=(1, 1)):
    """Every window of NHWC x as (N, out_h, out_w, kernel_h, kernel_w, C)."""
    rows = np.arange(out[0])[:, None] * stride[0] + np.arange(kernel[0]) * dilation[0]
    cols = np.arange(out[1])[:, None] * stride[1] + np.arange(kernel[1]) * dilation[1]
    return x[:, rows[:, None, :, None], cols[None, :, None, :], :]


def pad_hw(x, pads, value=0.0):
    return np.pad(x, ((0, 0), *pads, (0, 0)), constant_values=value)


def conv_ref(x, kernel, bias, stride, pads, dilation=(1, 1), groups=1):
    """Grouped cross-correlation of NHWC x with an HWIO kernel after zero padding."""
    xp = pad_hw(x, pads)
    kh, kw, per_group, filters = kernel.shape
    out = [
        (xp.shape[1 + a] - dilation[a] * (kernel.shape[a] - 1) - 1) // stride[a] + 1 for a in (0, 1)
    ]
    patches = windows(xp, (kh, kw), stride, out, dilation)
    width = filters // groups
    parts = [
        np.einsum(
            "nijabc,abco->nijo",
            patches[..., g * per_group : (g + 1) * per_group],
            kernel[..., g * width : (g + 1) * width],
        )
        for g in range(groups)
    ]
    return np.concatenate(parts, -1) + (0.0 if bias is None else bias)


def weights(model, name):
    return [np.asarray(w, dtype="float64") for w in model.get_layer(name).get_weights()]


# ----------------------------------------------------------------------------- convolution


@pytest.mark.parametrize("size", [10, 11])
def test_same_conv_at_stride_2_pads_as_tensorflow(compiled, size):
    x = rand(2, size, size, 3)
    model, y = run(
        compiled, spec(f"3 x {size} x {size}", "c = conv(4, kernel=3, stride=2, pad=same)"), x
    )
    kernel, bias = weights(model, "c.conv")
    pads = (same_pads(size, 3, 2),) * 2
    assert y.shape == (2, math.ceil(size / 2), math.ceil(size / 2), 4)
    np.testing.assert_allclose(y, conv_ref(x, kernel, bias, (2, 2), pads), rtol=1e-4, atol=1e-5)
    if size % 2 == 0:  # asymmetric: PyTorch-style symmetric padding would differ
        assert pads[0] == (0, 1)
        symmetric = conv_ref(x, kernel, bias, (2, 2), ((1, 1), (1, 1)))[
            :, : y.shape[1], : y.shape[2]
        ]
        assert not np.allclose(y, symmetric, atol=1e-3)


@pytest.mark.parametrize(
    "args, size, stride, dilation, one_layer",
    [
        ("kernel=3, pad=1", 9, 1, 1, True),
        ("kernel=5, pad=2", 8, 1, 1, True),
        ("kernel=3, dilation=2, pad=2", 9, 1, 2, True),
        ("kernel=3, stride=2, pad=1", 11, 2, 1, True),  # TF's same pads (1, 1) here
        ("kernel=3, stride=2, pad=1", 10, 2, 1, False),  # TF's same would pad (0, 1)
        ("kernel=4, pad=1", 9, 1, 1, False),  # an even kernel: same pads (1, 2)
    ],
)
def test_explicit_pads_equal_to_same_are_one_conv_layer(
    compiled, args, size, stride, dilation, one_layer
):
    """A ZeroPadding2D copy is left out exactly where Keras's `same` pads as the spec does."""
    x = rand(2, size, size, 3)
    model, y = run(compiled, spec(f"3 x {size} x {size}", f"c = conv(5, {args})"), x)
    kernel, bias = weights(model, "c.conv")
    kinds = [type(layer).__name__ for layer in model.layers]
    assert ("ZeroPadding2D" not in kinds) == one_layer
    pad = int(args.rsplit("=", 1)[1])
    expected = conv_ref(x, kernel, bias, (stride,) * 2, ((pad, pad),) * 2, (dilation,) * 2)
    assert y.shape == expected.shape
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "args, size, stride, dilation, pads, ceil",
    [
        ("kernel=3 x 5, pad=1 x 2", (9, 8), (1, 1), (1, 1), (1, 2), False),
        ("kernel=3, stride=2, dilation=2, pad=2, ceil=true", (12, 9), (2, 2), (2, 2), (2, 2), True),
        ("kernel=2 x 3, stride=3 x 2, ceil=true", (10, 10), (3, 2), (1, 1), (0, 0), True),
        # padding of at least the kernel: ceil((5 + 2 - 1) / 2) + 1 = 4 windows, the last one
        # all padding (a pool would drop it)
        ("kernel=1, stride=2, pad=1, ceil=true", (5, 5), (2, 2), (1, 1), (1, 1), True),
    ],
)
def test_explicit_pads_dilation_and_ceil_mode_conv(
    compiled, args, size, stride, dilation, pads, ceil
):
    x = rand(2, *size, 3)
    model, y = run(compiled, spec(f"3 x {size[0]} x {size[1]}", f"c = conv(5, {args})"), x)
    kernel, bias = weights(model, "c.conv")
    resolved = []
    for a in (0, 1):
        k, s, d, p = kernel.shape[a], stride[a], dilation[a], pads[a]
        out = torch_out(size[a], k, s, p, p, ceil, d, pool=False)
        extra = max((out - 1) * s + d * (k - 1) + 1 - (size[a] + 2 * p), 0)
        resolved.append((p, p + extra))
    expected = conv_ref(x, kernel, bias, stride, resolved, dilation)
    assert y.shape == expected.shape
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("size", "args"),
    [
        ((3, 3), "kernel=2, stride=1 x 2"),
        ((6, 3), "kernel=2, stride=1 x 3"),
        ((3, 5), "kernel=3 x 2, stride=2 x 1, pad=1"),
    ],
)
def test_strided_conv_with_one_output_column_is_right(compiled, size, args):
    """TensorFlow's oneDNN Conv2D (one input channel, vertical stride 1, horizontal stride > 1,
    one output column) computes rows past the first wrong; the model subsamples a stride-1
    conv instead wherever a strided axis has one output."""
    x = rand(2, *size, 1)
    model, y = run(compiled, spec(f"1 x {size[0]} x {size[1]}", f"c = conv(2, {args})"), x)
    kernel, bias = weights(model, "c.conv")
    pad = 1 if "pad=1" in args else 0
    stride = tuple(int(n) for n in args.split("stride=")[1].split(",")[0].split(" x "))
    expected = conv_ref(x, kernel, bias, stride, ((pad, pad), (pad, pad)))
    assert y.shape == expected.shape
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)


def test_grouped_conv_is_two_convs_on_the_channel_halves(compiled):
    x = rand(2, 7, 7, 4).astype("float32")
    model, y = run(compiled, spec("4 x 7 x 7", "c = conv(6, kernel=3, groups=2)"), x)
    kernel, bias = (w.astype("float32") for w in weights(model, "c.conv"))
    assert kernel.shape == (3, 3, 2, 6)
    halves = [
        keras.ops.conv(x[..., 2 * g : 2 * g + 2], kernel[..., 3 * g : 3 * g + 3], padding="valid")
        for g in (0, 1)
    ]
    np.testing.assert_allclose(y, np.concatenate(halves, -1) + bias, rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- pooling


@pytest.mark.parametrize(
    "size, args, kernel, stride, pad, ceil",
    [
        (8, "3, stride=2, ceil=true", 3, 2, 0, True),
        (7, "2, stride=2, pad=1, ceil=true", 2, 2, 1, True),  # last window would start in padding
        (9, "3, stride=2, pad=1", 3, 2, 1, False),
        (8, "3, stride=2, pad=same", 3, 2, "same", False),
    ],
)
def test_max_pool_never_picks_padding_and_rounds_as_pytorch(
    compiled, size, args, kernel, stride, pad, ceil
):
    x = -1.0 - np.abs(rand(2, size, size, 3))  # all negative: zero padding would win
    _, y = run(compiled, spec(f"3 x {size} x {size}", f"p = maxpool({args})"), x)
    before, after = same_pads(size, kernel, stride) if pad == "same" else (pad, pad)
    out = torch_out(size, kernel, stride, before, after, ceil)
    extra = max((out - 1) * stride + kernel - (size + before + after), 0)
    xp = pad_hw(x, ((before, after + extra),) * 2, -np.inf)
    expected = windows(xp, (kernel, kernel), (stride, stride), (out, out)).max(axis=(3, 4))
    assert y.shape == expected.shape and np.isfinite(y).all()
    np.testing.assert_allclose(y, expected, rtol=1e-6)


def avgpool_ref(x, kernel, stride, pads, out, count_pad):
    """PyTorch's avg_pool2d: explicit padding counts if asked; the ceil-mode overhang never."""
    _, height, width, _ = x.shape
    y = np.zeros((x.shape[0], out, out, x.shape[-1]))
    for i in range(out):
        for j in range(out):
            h0, w0 = i * stride - pads[0], j * stride - pads[0]
            h1, w1 = min(h0 + kernel, height + pads[1]), min(w0 + kernel, width + pads[1])
            a0, a1, b0, b1 = max(h0, 0), min(h1, height), max(w0, 0), min(w1, width)
            divisor = (h1 - h0) * (w1 - w0) if count_pad else (a1 - a0) * (b1 - b0)
            y[:, i, j] = x[:, a0:a1, b0:b1].sum(axis=(1, 2)) / divisor
    return y


@pytest.mark.parametrize("count_pad", [True, False])
@pytest.mark.parametrize(
    "size, args, pad, ceil",
    [(6, "pad=1", 1, False), (6, "pad=1, ceil=true", 1, True), (8, "pad=same", "same", False)],
)
def test_avg_pool_divisor_follows_count_pad(compiled, size, args, pad, ceil, count_pad):
    x = rand(2, size, size, 2) + 3.0
    flag = "true" if count_pad else "false"
    source = spec(f"2 x {size} x {size}", f"p = avgpool(3, stride=2, {args}, count_pad={flag})")
    _, y = run(compiled, source, x)
    pads = same_pads(size, 3, 2) if pad == "same" else (pad, pad)
    out = torch_out(size, 3, 2, *pads, ceil)
    np.testing.assert_allclose(y, avgpool_ref(x, 3, 2, pads, out, count_pad), rtol=1e-5)


def adaptive_ref(x, out):
    """PyTorch's adaptive average pooling: bin i spans floor(i*n/m) .. ceil((i+1)*n/m)."""
    h, w = x.shape[1:3]
    rows = [(i * h // out[0], -(-(i + 1) * h // out[0])) for i in range(out[0])]
    cols = [(j * w // out[1], -(-(j + 1) * w // out[1])) for j in range(out[1])]
    y = [[x[:, a:b, c:d].mean(axis=(1, 2)) for c, d in cols] for a, b in rows]
    return np.stack([np.stack(r, 1) for r in y], 1)


@pytest.mark.parametrize(
    "size, out, plain",
    [
        ((6, 5), (3, 3), False),
        ((5, 7), (2, 7), True),
        ((2, 2), (3, 3), False),
        ((13, 13), (6, 6), True),
    ],
)
def test_adaptive_avg_pool_uses_pytorch_bins(compiled, size, out, plain):
    x = rand(2, *size, 3)
    source = spec(f"3 x {size[0]} x {size[1]}", f"p = adaptive_avgpool({out[0]} x {out[1]})")
    model, y = run(compiled, source, x)
    np.testing.assert_allclose(y, adaptive_ref(x, out), rtol=1e-5, atol=1e-6)
    is_plain = type(model.get_layer("p.adaptive_avgpool")).__name__ == "AveragePooling2D"
    assert is_plain == plain


def test_global_avg_pool_keeps_a_one_by_one_map(compiled):
    x = rand(2, 4, 5, 3)
    _, y = run(compiled, spec("3 x 4 x 5", "g = global_avgpool"), x)
    np.testing.assert_allclose(y, x.mean(axis=(1, 2), keepdims=True), rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- normalisation


def lrn_ref(x, size, alpha, beta, k):
    """The paper's LRN over channels-last x: no division of alpha by size."""
    channels = x.shape[-1]
    out = np.empty_like(x)
    for c in range(channels):
        lo, hi = max(0, c - size // 2), min(channels, c + (size - 1) // 2 + 1)
        out[..., c] = x[..., c] / (k + alpha * (x[..., lo:hi] ** 2).sum(-1)) ** beta
    return out


def test_lrn_is_the_papers_formula(compiled):
    x = rand(2, 4, 5, 12, scale=40.0)  # large: alpha vs alpha/size matters
    _, y = run(compiled, spec("12 x 4 x 5", "n = lrn(size=5, alpha=1e-4, beta=0.75, k=2)"), x)
    np.testing.assert_allclose(y, lrn_ref(x, 5, 1e-4, 0.75, 2.0), rtol=1e-5)
    assert not np.allclose(y, lrn_ref(x, 5, 1e-4 / 5, 0.75, 2.0), rtol=1e-2)


def test_batchnorm_momentum_weighs_the_new_statistic(compiled):
    x = rand(8, 3, 3, 4) + np.arange(4) + 2.0
    model = compiled(
        spec("4 x 3 x 3", "b = batchnorm(momentum=0.25, eps=0.5)")
    ).module.build_model()
    model(x.astype("float32"), training=True)  # one training step's statistics update
    _, _, mean, var = weights(model, "b.batchnorm")
    np.testing.assert_allclose(mean, 0.25 * x.mean(axis=(0, 1, 2)), rtol=1e-5)
    y = np.asarray(model(x.astype("float32"), training=False))
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + 0.5), rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- element-wise


@pytest.mark.parametrize(
    "op, ref",
    [
        ("relu", lambda x: np.maximum(x, 0.0)),
        ("relu6", lambda x: np.clip(x, 0.0, 6.0)),
        ("tanh", np.tanh),
        ("sigmoid", lambda x: 1.0 / (1.0 + np.exp(-x))),
        ("leaky_relu(0.2)", lambda x: np.where(x > 0, x, 0.2 * x)),
        ("softmax |> tanh", lambda x: np.tanh(np.exp(x) / np.exp(x).sum(-1, keepdims=True))),
    ],
)
def test_activations(compiled, op, ref):
    x = rand(2, 3, 3, 4, scale=5.0)
    _, y = run(compiled, spec("4 x 3 x 3", f"a = {op}"), x)
    np.testing.assert_allclose(y, ref(x), rtol=1e-5, atol=1e-6)


def test_dropout_drops_p_and_rescales_the_rest(compiled):
    x = np.abs(rand(4, 2500)) + 1.0
    model, y = run(compiled, spec("2500", "d = dropout(0.3)"), x, training=True)
    kept = y != 0
    assert abs(1.0 - kept.mean() - 0.3) < 0.02
    np.testing.assert_allclose(y[kept], x[kept] / 0.7, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(model(x.astype("float32"))), x, rtol=1e-6)


def test_flatten_before_dense_keeps_keras_channels_last_order(compiled):
    """Into a dense layer Keras flattens H, W, C (its kernel's rows in that order; the portable
    file permutes them), with no transpose in the model."""
    x = rand(2, 3, 4, 2)
    model, y = run(compiled, spec("2 x 3 x 4", "f = flatten |> dense(3, bias=false)"), x)
    assert "FlattenCHW" not in {type(layer).__name__ for layer in model.layers}
    kernel = np.asarray(model.get_layer("f.dense").kernel)
    np.testing.assert_allclose(y, x.reshape(2, -1) @ kernel, rtol=1e-5, atol=1e-6)


def test_dense_without_bias_is_a_matrix_product(compiled):
    x = rand(3, 5)
    model, y = run(compiled, spec("5", "f = dense(4, bias=false)"), x)
    (kernel,) = weights(model, "f.dense")
    np.testing.assert_allclose(y, x @ kernel, rtol=1e-5, atol=1e-6)


def test_concat_and_add_join_named_branches(compiled):
    body = "a = relu\nb = tanh from image\nc = concat(a, b)\nd = add(a, b)\nout = concat(c, d)"
    x = rand(2, 3, 3, 2)
    _, y = run(compiled, spec("2 x 3 x 3", body), x)
    a, b = np.maximum(x, 0.0), np.tanh(x)
    np.testing.assert_allclose(y, np.concatenate([a, b, a + b], -1), rtol=1e-5, atol=1e-6)


def test_flattened_outputs_and_sums_are_in_the_specs_c_h_w_order(compiled):
    """Where the flatten order shows (an output, an add of two maps of different C x H x W),
    the features come in the spec's C, H, W order, as in PyTorch."""
    x = rand(2, 3, 4, 5).astype("float32")
    model, y = run(compiled, spec("5 x 3 x 4", "y = flatten"), x)
    assert "FlattenCHW" in {type(layer).__name__ for layer in model.layers}
    np.testing.assert_array_equal(y, x.transpose(0, 3, 1, 2).reshape(2, -1))
    body = "a = flatten\nb = conv(3, kernel=1, bias=false) |> resize(5 x 4) |> flatten from image\ny = add(a, b)"
    model, y = run(compiled, spec("5 x 3 x 4", body), x)
    kernel = np.asarray(model.get_layer("b.conv").kernel)[0, 0]  # (5 inputs, 3 filters)
    mixed = np.einsum("nhwc,cf->nhwf", x, kernel)
    b = resize_axis(resize_axis(mixed, 1, 5, "bilinear"), 2, 4, "bilinear")
    want = x.transpose(0, 3, 1, 2).reshape(2, -1) + b.transpose(0, 3, 1, 2).reshape(2, -1)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


def nearest_index(i, n_in, n_out):
    """The input sample that output i of a nearest resize reads: floor((i + 1/2) n_in / n_out),
    in exact rational arithmetic."""
    return math.floor(Fraction(2 * i + 1, 2) * Fraction(n_in, n_out))


def resize_axis(x, axis, n_out, mode):
    """Half-pixel-centre resampling along one axis, no antialiasing."""
    n = x.shape[axis]
    centres = (np.arange(n_out) + 0.5) * n / n_out
    if mode == "nearest":
        return np.take(x, [nearest_index(i, n, n_out) for i in range(n_out)], axis)
    src = np.clip(centres - 0.5, 0, n - 1)
    lo = np.floor(src).astype(int)
    frac = (src - lo).reshape([-1 if a == axis else 1 for a in range(x.ndim)])
    return np.take(x, lo, axis) * (1 - frac) + np.take(x, np.minimum(lo + 1, n - 1), axis) * frac


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
@pytest.mark.parametrize("size", [(13, 16), (4, 3)])
def test_resize_uses_half_pixel_centres_without_antialiasing(compiled, mode, size):
    x = rand(2, 9, 7, 3)
    source = spec("3 x 9 x 7", f"r = resize({size[0]} x {size[1]}, mode={mode})")
    _, y = run(compiled, source, x)
    expected = resize_axis(resize_axis(x, 1, size[0], mode), 2, size[1], mode)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_nearest_resize_reads_exact_half_pixel_centres(compiled):
    """At an exact tie, (14 + 0.5) * 2 / 29 = 1, output 14 reads input 1, as the PyTorch model
    does (float32 arithmetic gives 0.99999994 there); and over many sizes, every index is the
    exact one."""
    module = compiled(spec("1 x 1 x 2", "r = resize(1 x 29, mode=nearest)")).module
    y = np.asarray(module.build_model()(np.array([10.0, 20.0]).reshape(1, 1, 2, 1)))
    assert y.shape == (1, 1, 29, 1) and y[0, 0, 14, 0] == 20.0
    for n_in in range(1, 25):
        x = np.arange(n_in, dtype="float64").reshape(1, 1, n_in, 1)
        for n_out in range(1, 70):
            got = np.asarray(module.Resize(1, n_out, interpolation="nearest")(x))[0, 0, :, 0]
            want = [nearest_index(i, n_in, n_out) for i in range(n_out)]
            assert got.tolist() == want, (n_in, n_out)


# ----------------------------------------------------------------------------- initialisers


def test_normal_weights_are_untruncated_with_the_spec_numbers(compiled):
    body = "f = dense(512, weight=normal(mean=0.05, std=0.02), bias=constant(0.7))"
    model = compiled(spec("1024", body)).module.build_model()
    kernel, bias = (np.asarray(w) for w in model.get_layer("f.dense").get_weights())
    assert abs(kernel.mean() - 0.05) < 4 * 0.02 / math.sqrt(kernel.size)
    assert abs(kernel.std() / 0.02 - 1.0) < 0.01
    assert 0.040 < (np.abs(kernel - 0.05) > 2 * 0.02).mean() < 0.051  # 4.55% beyond 2 std
    assert (bias == np.float32(0.7)).all()


def test_he_normal_fan_out_std(compiled):
    body = "c = conv(128, kernel=3, weight=he_normal(mode=fan_out), bias=zeros)"
    model = compiled(spec("64 x 5 x 5", body)).module.build_model()
    kernel, bias = (np.asarray(w) for w in model.get_layer("c.conv").get_weights())
    assert abs(kernel.std() / math.sqrt(2.0 / (128 * 9)) - 1.0) < 0.015
    assert abs(kernel.mean()) < 4 * kernel.std() / math.sqrt(kernel.size)
    assert (bias == 0.0).all()


def test_uniform_initialisers_use_the_fans_of_the_layer(compiled):
    body = "f = dense(256, weight=glorot_uniform, bias=fan_in_uniform)"
    model = compiled(spec("512", body)).module.build_model()
    kernel, bias = (
        np.asarray(w, dtype="float64") for w in model.get_layer("f.dense").get_weights()
    )
    bound = math.sqrt(6.0 / (512 + 256))
    assert -bound <= kernel.min() < -0.999 * bound and 0.999 * bound < kernel.max() <= bound
    assert abs(kernel.std() / (bound / math.sqrt(3.0)) - 1.0) < 0.01
    bias_bound = 1.0 / math.sqrt(512)
    assert (
        -bias_bound <= bias.min() < -0.8 * bias_bound
        and 0.8 * bias_bound < bias.max() <= bias_bound
    )


def test_truncated_and_gained_initialisers_draw_torchs_distributions(compiled):
    """trunc_normal's absolute bounds, he_* with a nonlinearity's gain (init_common)."""
    model = compiled(init_reference.SPEC).module.build_model()
    for layer in init_reference.EXPECTED:
        init_reference.check_drawn(layer, model.get_layer(layer).get_weights()[0])


def test_statements_that_never_reach_the_output_are_not_built(compiled):
    out = compiled(spec("2 x 3 x 3", "unused = relu\nout = tanh from image"))
    model = out.module.build_model()
    assert "# unused never reaches the output: not built" in (out.dir / "model.py").read_text()
    assert "out.tanh" in {layer.name for layer in model.layers}
    assert "unused.relu" not in {layer.name for layer in model.layers}


def test_several_inputs_become_a_list_of_model_inputs(compiled):
    source = "model T\ninput a: 2 x 3 x 3\ninput b: 2 x 3 x 3\ns = add(a, b) |> relu\n"
    module = compiled(source).module
    xa, xb = rand(2, 3, 3, 2, seed=1), rand(2, 3, 3, 2, seed=2)
    y = np.asarray(module.build_model()([xa.astype("float32"), xb.astype("float32")]))
    assert module.INPUT_SHAPE == (3, 3, 2)
    np.testing.assert_allclose(y, np.maximum(xa + xb, 0.0), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("field", ["model", "statement"])
def test_names_that_are_not_identifiers_never_reach_the_code(field):
    checked = check(spec("2 x 3 x 3", "out = relu"))
    graph = checked.graph
    evil = "x\nimport os"
    if field == "model":
        graph = graph.model_copy(update={"name": evil})
    else:
        graph = graph.model_copy(
            update={"statements": (graph.statements[0].model_copy(update={"name": evil}),)}
        )
    with pytest.raises(ValueError, match="not a safe Python identifier"):
        render_model(graph, checked.report, "t.arch")
