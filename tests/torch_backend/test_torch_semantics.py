"""The generated modules compute what the spec means: padding, pooling, LRN, groups, init."""

import math
from fractions import Fraction

import init_reference
import numpy as np
import pytest
from ptgen import ROOT

from archdsl.shapes import window_out

torch = pytest.importorskip("torch")


def run(out, x):
    """The model of a compiled spec on a float64 NumPy batch, in eval mode, as NumPy."""
    torch.manual_seed(0)
    model = out.module.build_model().eval()
    with torch.no_grad():
        y = model(torch.as_tensor(x, dtype=torch.float32))
    return model, y.numpy().astype(np.float64)


def normal(seed, shape, scale=1.0):
    """Gaussian test data that float32 represents exactly, as float64."""
    rng = np.random.default_rng(seed)
    return rng.normal(scale=scale, size=shape).astype(np.float32).astype(np.float64)


def key_names(model):
    """Every submodule name of the model."""
    return [name for name, _ in model.named_modules()]


def np_conv(x, w, b, stride, pads, dilation=1):
    """Cross-correlation of (N, C, H, W) with (O, C, kh, kw); pads = ((top, bottom), (l, r))."""
    x = np.pad(x, ((0, 0), (0, 0), *pads))
    eh, ew = (dilation * (k - 1) + 1 for k in w.shape[2:])
    oh, ow = (x.shape[2] - eh) // stride + 1, (x.shape[3] - ew) // stride + 1
    out = np.empty((x.shape[0], w.shape[0], oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = x[
                :,
                :,
                i * stride : i * stride + eh : dilation,
                j * stride : j * stride + ew : dilation,
            ]
            out[:, :, i, j] = np.einsum("nchw,ochw->no", patch, w)
    return out + (0 if b is None else b[None, :, None, None])


def np_windows(x, k, s, out):
    """(N, C, out, out, k, k) windows of a padded square map."""
    return np.stack(
        [
            np.stack([x[:, :, i * s : i * s + k, j * s : j * s + k] for j in range(out)], 2)
            for i in range(out)
        ],
        2,
    )


def tf_same(n, k, s):
    """TensorFlow's `same` padding of one axis: (before, after), the odd pixel after."""
    total = max((math.ceil(n / s) - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def weights(model, path):
    """A parameter of the model, by its state_dict name, as float64 NumPy."""
    return model.get_parameter(path).detach().numpy().astype(np.float64)


# ----------------------------------------------------------------------------- initialisation


def test_alexnet_initialisation_is_the_papers(compiled_file):
    torch.manual_seed(0)
    model = compiled_file(ROOT / "specs" / "alexnet.arch").module.build_model()
    biases = {
        "conv1.conv": 0,
        "conv2.conv": 1,
        "conv3.conv": 0,
        "conv4.conv": 1,
        "conv5.conv": 1,
        "fc6.dense": 1,
        "fc7.dense": 1,
        "fc8.dense": 0,
    }
    for path, bias in biases.items():
        w, b = weights(model, f"{path}.weight"), weights(model, f"{path}.bias")
        assert abs(w.mean()) < 5 * 0.01 / math.sqrt(w.size), path
        assert w.std() == pytest.approx(0.01, rel=0.03), path
        assert np.all(b == bias), path


FANS = """
model Inits
input image: 64 x 8 x 8
he  = conv(128, kernel=3, weight=he_normal, bias=fan_in_uniform)
hef = conv(128, kernel=3, weight=he_uniform(mode=fan_out), bias=constant(0.25))
gl  = conv(96, kernel=3, weight=glorot_normal, bias=ones)
out = flatten |> dense(512, weight=glorot_uniform, bias=zeros)
"""


def test_fan_based_initialisers_use_the_right_fans(compiled):
    torch.manual_seed(0)
    model = compiled(FANS).module.build_model()
    he_std = math.sqrt(2 / (64 * 9))
    hef_bound = math.sqrt(6 / (128 * 9))  # fan_out: filters x taps
    gl_std = math.sqrt(2 / (128 * 9 + 96 * 9))
    dense_bound = math.sqrt(6 / (96 * 2 * 2 + 512))
    for path, std, bound in (
        ("he.conv.weight", he_std, None),
        ("hef.conv.weight", hef_bound / math.sqrt(3), hef_bound),
        ("gl.conv.weight", gl_std, None),
        ("out.dense.weight", dense_bound / math.sqrt(3), dense_bound),
    ):
        w = weights(model, path)
        assert abs(w.mean()) < 5 * std / math.sqrt(w.size), path
        assert w.std() == pytest.approx(std, rel=0.02), path
        if bound is not None:
            assert bound * 0.99 < np.abs(w).max() <= bound, path
    he_bias = weights(model, "he.conv.bias")
    assert 0.8 / 24 < np.abs(he_bias).max() <= 1 / 24  # U(+-1/sqrt(fan_in)), fan_in = 576
    assert np.all(weights(model, "hef.conv.bias") == 0.25)
    assert np.all(weights(model, "gl.conv.bias") == 1.0)
    assert np.all(weights(model, "out.dense.bias") == 0.0)


def test_truncated_and_gained_initialisers_draw_torchs_distributions(compiled):
    """trunc_normal's absolute bounds, he_* with a nonlinearity's gain (init_common)."""
    torch.manual_seed(0)
    model = compiled(init_reference.SPEC).module.build_model()
    for layer in init_reference.EXPECTED:
        init_reference.check_drawn(layer, weights(model, f"{layer}.weight"))


# ----------------------------------------------------------------------------- LRN


def paper_lrn(a, size, alpha, beta, k):
    """b_i = a_i / (k + alpha * sum of a_j^2 over the channels within size // 2 of i)^beta."""
    out = np.empty_like(a)
    channels = a.shape[1]
    for i in range(channels):
        lo, hi = max(0, i - size // 2), min(channels, i + size // 2 + 1)
        out[:, i] = a[:, i] / (k + alpha * (a[:, lo:hi] ** 2).sum(axis=1)) ** beta
    return out


@pytest.mark.parametrize(
    ("size", "alpha", "beta", "k"),
    [(5, 1e-4, 0.75, 2.0), (3, 1e-3, 0.5, 1.0), (11, 1e-4, 0.75, 2.0)],
)
def test_lrn_is_the_papers_formula(size, alpha, beta, k, compiled):
    out = compiled(
        f"model L\ninput image: 7 x 3 x 3\nn = lrn(size={size}, alpha={alpha}, beta={beta}, k={k})\n"
    )
    x = normal(0, (2, 7, 3, 3), 100.0)  # alpha * sum >> k
    _, y = run(out, x)
    np.testing.assert_allclose(y, paper_lrn(x, size, alpha, beta, k), rtol=2e-5)


# ----------------------------------------------------------------------------- conv padding


@pytest.mark.parametrize("n", [8, 9])
def test_same_conv_at_stride_2_pads_as_tensorflow(n, compiled):
    out = compiled(
        f"model S\ninput image: 2 x {n} x {n}\nc = conv(3, kernel=3, stride=2, pad=same, bias=uniform(-1, 1))\n"
    )
    x = normal(1, (2, 2, n, n))
    model, y = run(out, x)
    pad = tf_same(n, 3, 2)
    assert pad == ((0, 1) if n == 8 else (1, 1))
    assert ("c.conv_pad" in key_names(model)) == (pad[0] != pad[1])
    want = np_conv(x, weights(model, "c.conv.weight"), weights(model, "c.conv.bias"), 2, (pad, pad))
    np.testing.assert_allclose(y, want, atol=1e-5)


def test_ceil_mode_conv_zero_pads_its_last_window(compiled):
    out = compiled("model C\ninput image: 2 x 8 x 8\nc = conv(3, kernel=3, stride=2, ceil=true)\n")
    x = normal(2, (1, 2, 8, 8))
    model, y = run(out, x)
    size = window_out(8, 3, 2, 0, 0, 1, True)
    assert y.shape == (1, 3, size, size) == (1, 3, 4, 4)
    want = np_conv(
        x, weights(model, "c.conv.weight"), weights(model, "c.conv.bias"), 2, ((0, 1), (0, 1))
    )
    np.testing.assert_allclose(y, want, atol=1e-5)


def test_dilated_conv_without_bias(compiled):
    out = compiled(
        "model D\ninput image: 3 x 9 x 9\nc = conv(5, kernel=3, dilation=2, pad=2, bias=false)\n"
    )
    x = normal(3, (2, 3, 9, 9))
    model, y = run(out, x)
    assert model.c.conv.bias is None and model.c.conv.dilation == (2, 2)
    want = np_conv(x, weights(model, "c.conv.weight"), None, 1, ((2, 2), (2, 2)), dilation=2)
    np.testing.assert_allclose(y, want, atol=1e-5)


def test_grouped_conv_is_two_convs_on_the_channel_halves(compiled):
    out = compiled(
        "model G\ninput image: 4 x 6 x 6\nc = conv(6, kernel=3, pad=1, groups=2, bias=uniform(-1, 1))\n"
    )
    x = normal(4, (2, 4, 6, 6))
    model, y = run(out, x)
    w, b = weights(model, "c.conv.weight"), weights(model, "c.conv.bias")
    assert w.shape == (6, 2, 3, 3)
    halves = [
        np_conv(
            x[:, 2 * g : 2 * g + 2], w[3 * g : 3 * g + 3], b[3 * g : 3 * g + 3], 1, ((1, 1), (1, 1))
        )
        for g in (0, 1)
    ]
    np.testing.assert_allclose(y, np.concatenate(halves, axis=1), atol=1e-5)


# ----------------------------------------------------------------------------- pooling


def np_maxpool(x, k, s, before, out):
    """Max over windows of a map padded with -inf: `before` first, then up to the last window."""
    n = x.shape[2]
    after = max((out - 1) * s + k - n - before, 0)
    padded = np.pad(x, ((0, 0), (0, 0), (before, after), (before, after)), constant_values=-np.inf)
    return np_windows(padded, k, s, out).max(axis=(-2, -1))


@pytest.mark.parametrize(
    ("n", "k", "s", "pad", "ceil", "explicit"),
    [
        (8, 3, 2, "0", "true", False),  # 4 windows where floor gives 3
        (7, 3, 2, "1", "true", False),
        (2, 3, 2, "0", "true", False),  # one window, larger than the input
        (8, 3, 2, "same", "false", True),  # (0, 1): asymmetric
        (9, 2, 2, "0", "true", False),  # the last window starts inside the input
    ],
)
def test_maxpool_windows_and_padding(n, k, s, pad, ceil, explicit, compiled):
    out = compiled(
        f"model M\ninput image: 2 x {n} x {n}\np = maxpool({k}, stride={s}, pad={pad}, ceil={ceil})\n"
    )
    x = np.float32(-1.0 - np.abs(normal(5, (2, 2, n, n)))).astype(np.float64)  # zeros would win
    model, y = run(out, x)
    before, after = tf_same(n, k, s) if pad == "same" else (int(pad), int(pad))
    size = window_out(n, k, s, before, after, 1, ceil == "true", pool=True)
    assert y.shape[2:] == (size, size)
    assert ("p.maxpool_pad" in key_names(model)) == explicit
    np.testing.assert_array_equal(y, np_maxpool(x, k, s, before, size))


def np_avgpool(x, k, s, before, after, out, count_pad):
    """Window sums over zero padding, divided by the real cells plus (if count_pad) the padded
    ones; cells past the padding that a ceil-mode window reads never count."""
    n = x.shape[2]
    extra = max((out - 1) * s + k - n - before - after, 0)
    spec_pad = ((0, 0), (0, 0), (before, after), (before, after))
    over = ((0, 0), (0, 0), (0, extra), (0, extra))
    sums = np.pad(np.pad(x, spec_pad), over)
    counted = np.pad(np.pad(np.ones_like(x), spec_pad, constant_values=float(count_pad)), over)
    return np_windows(sums, k, s, out).sum(axis=(-2, -1)) / np_windows(counted, k, s, out).sum(
        axis=(-2, -1)
    )


@pytest.mark.parametrize(
    ("n", "k", "s", "pad", "ceil", "count_pad", "helper"),
    [
        (7, 3, 2, "1", "false", "false", False),
        (7, 3, 2, "1", "false", "true", False),
        (8, 3, 2, "same", "false", "false", True),  # Keras's `same`: padding never counts
        (8, 3, 2, "same", "false", "true", True),
        (8, 3, 2, "1", "true", "true", False),  # the ceil overhang does not count
        (8, 3, 3, "0", "true", "true", False),
        (8, 2, 3, "1", "true", "true", False),
        (2, 3, 2, "0", "true", "false", False),  # one window, larger than the input
    ],
)
def test_avgpool_divisors(n, k, s, pad, ceil, count_pad, helper, compiled):
    spec = f"model A\ninput image: 2 x {n} x {n}\np = avgpool({k}, stride={s}, pad={pad}, ceil={ceil}, count_pad={count_pad})\n"
    out = compiled(spec)
    x = normal(6, (2, 2, n, n)) + 3.0
    model, y = run(out, x)
    before, after = tf_same(n, k, s) if pad == "same" else (int(pad), int(pad))
    size = window_out(n, k, s, before, after, 1, ceil == "true", pool=True)
    assert type(model.p.avgpool).__name__ == ("PaddedAvgPool2d" if helper else "AvgPool2d")
    np.testing.assert_allclose(
        y, np_avgpool(x, k, s, before, after, size, count_pad == "true"), rtol=1e-5
    )


# ----------------------------------------------------------------------------- resize


def nearest_index(i, n_in, n_out):
    """The input sample that output i of a nearest resize reads: floor((i + 1/2) n_in / n_out),
    in exact rational arithmetic."""
    return math.floor(Fraction(2 * i + 1, 2) * Fraction(n_in, n_out))


def np_resize_axis(n_in, n_out, mode):
    """The (n_out, n_in) matrix of a half-pixel resize along one axis."""
    m = np.zeros((n_out, n_in))
    for i in range(n_out):
        centre = (i + 0.5) * n_in / n_out - 0.5
        if mode == "nearest":
            m[i, nearest_index(i, n_in, n_out)] = 1.0
            continue
        c = min(max(centre, 0.0), n_in - 1)
        lo = int(math.floor(c))
        hi = min(lo + 1, n_in - 1)
        m[i, lo] += 1 - (c - lo)
        m[i, hi] += c - lo
    return m


@pytest.mark.parametrize(
    ("mode", "src", "dst"),
    [("bilinear", 3, (5, 4)), ("bilinear", 6, (4, 3)), ("nearest", 3, (5, 7))],
)
def test_resize_uses_half_pixel_centres(mode, src, dst, compiled):
    out = compiled(
        f"model R\ninput image: 2 x {src} x {src}\nr = resize({dst[0]} x {dst[1]}, mode={mode})\n"
    )
    x = normal(7, (1, 2, src, src))
    _, y = run(out, x)
    rows, cols = np_resize_axis(src, dst[0], mode), np_resize_axis(src, dst[1], mode)
    np.testing.assert_allclose(y, np.einsum("ih,nchw,jw->ncij", rows, x, cols), atol=1e-5)


def test_nearest_resize_reads_exact_half_pixel_centres(compiled):
    """At an exact tie, (14 + 0.5) * 2 / 29 = 1, output 14 reads input 1 (float32 arithmetic
    gives 0.99999994 there, and torch's nearest-exact reads input 0 at some ties); over many
    sizes every index is the exact one, as in the Keras model."""
    out = compiled("model R\ninput image: 1 x 1 x 2\nr = resize(1 x 29, mode=nearest)\n")
    _, y = run(out, np.array([10.0, 20.0]).reshape(1, 1, 1, 2))
    assert y.shape == (1, 1, 1, 29) and y[0, 0, 0, 14] == 20.0
    for n_in in range(1, 25):
        x = torch.arange(n_in, dtype=torch.float32).reshape(1, 1, 1, n_in)
        for n_out in range(1, 70):
            got = out.module.Resize((1, n_out), "nearest")(x)[0, 0, 0]
            assert got.tolist() == [nearest_index(i, n_in, n_out) for i in range(n_out)]


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_resize_to_one_number_is_a_square(mode, compiled):
    out = compiled(f"model R\ninput image: 2 x 2 x 3\nr = resize(3, mode={mode})\n")
    x = normal(8, (1, 2, 2, 3))
    _, y = run(out, x)
    rows, cols = np_resize_axis(2, 3, mode), np_resize_axis(3, 3, mode)
    np.testing.assert_allclose(y, np.einsum("ih,nchw,jw->ncij", rows, x, cols), atol=1e-5)


# ----------------------------------------------------------------------------- merges, heads


MERGES = """
model Merges
input image: 3 x 5 x 5
a = conv(4, kernel=1)
b = relu from a
e = dropout(0.5) |> relu from a
c = add(a, b, e)
d = concat(c, a) |> leaky_relu(0.5)
"""


def test_merges_and_in_place_activations_leave_shared_tensors_alone(compiled):
    out = compiled(MERGES)
    x = normal(8, (2, 3, 5, 5))
    model, y = run(out, x)
    with torch.no_grad():
        a = model.a(torch.as_tensor(x, dtype=torch.float32)).double()
    expected = torch.nn.functional.leaky_relu(torch.cat([a + 2 * torch.relu(a), a], dim=1), 0.5)
    np.testing.assert_allclose(y, expected.numpy(), atol=1e-5)


def test_a_trailing_softmax_is_applied_by_predict_only(compiled):
    module = compiled(
        "model H\ninput image: 4\nout = dense(6, bias=uniform(1, 2)) |> softmax\n"
    ).module
    torch.manual_seed(0)
    model = module.build_model()
    x = torch.randn(3, 4)
    logits = model(x)
    assert not torch.allclose(logits.sum(dim=1), torch.ones(3))
    probabilities = module.predict(model, x)
    assert model.training and not probabilities.requires_grad
    torch.testing.assert_close(probabilities, torch.softmax(logits, dim=1))


def test_predict_without_softmax_returns_the_outputs_in_eval_mode(compiled):
    module = compiled("model H\ninput image: 4\nout = dropout(0.5) |> dense(6)\n").module
    model = module.build_model()
    x = torch.randn(3, 4)
    torch.testing.assert_close(module.predict(model, x), model.eval()(x))


def test_normalisation_and_activation_options(compiled):
    spec = """
model Options
input image: 3 x 4 x 4
m = conv(4, kernel=1) |> batchnorm(eps=0.001, momentum=0.01) |> leaky_relu(0.2) |> relu6
f = flatten |> batchnorm(eps=0.01, momentum=0.3) |> tanh |> sigmoid
"""
    model = compiled(spec).module.build_model()
    bn2, bn1 = model.m.batchnorm, model.f.batchnorm
    assert isinstance(bn2, torch.nn.BatchNorm2d) and (bn2.eps, bn2.momentum) == (0.001, 0.01)
    assert isinstance(bn1, torch.nn.BatchNorm1d) and (bn1.eps, bn1.momentum) == (0.01, 0.3)
    assert torch.all(bn2.weight == 1) and torch.all(bn2.bias == 0)
    assert model.m.leaky_relu.negative_slope == 0.2
    x = torch.tensor([-10.0, -1.0, 3.0, 9.0])
    torch.testing.assert_close(model.m.leaky_relu(x.clone()), torch.tensor([-2.0, -0.2, 3.0, 9.0]))
    torch.testing.assert_close(model.m.relu6(x.clone()), torch.tensor([0.0, 0.0, 3.0, 6.0]))
    assert [type(m).__name__ for m in model.f] == ["Flatten", "BatchNorm1d", "Tanh", "Sigmoid"]


# ----------------------------------------------------------------------------- torchvision


TORCHVISION_NAMES = {
    "conv1.conv": "features.0",
    "conv2.conv": "features.3",
    "conv3.conv": "features.6",
    "conv4.conv": "features.8",
    "conv5.conv": "features.10",
    "fc6.dense": "classifier.1",
    "fc7.dense": "classifier.4",
    "fc8.dense": "classifier.6",
}


def test_torchvision_alexnet_weights_give_bit_identical_outputs(compiled_file):
    path = ROOT / "specs" / "variants" / "torchvision_alexnet.arch"
    if not path.exists():
        pytest.skip(f"{path.relative_to(ROOT)} is not written yet")
    models = pytest.importorskip("torchvision.models")
    torch.manual_seed(0)
    reference = models.alexnet(weights=None).eval()
    theirs = reference.state_dict()
    ours = compiled_file(path).module.build_model().eval()
    ours.load_state_dict(
        {
            f"{mine}.{p}": theirs[f"{tv}.{p}"]
            for mine, tv in TORCHVISION_NAMES.items()
            for p in ("weight", "bias")
        }
    )
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert torch.equal(ours(x), reference(x))


def test_statements_that_never_reach_the_output_are_not_built(compiled):
    """One rule for shapes, weights and both backends: a statement that never reaches the
    output (W103) is not part of the model, so nothing counts, holds or loads its tensors."""
    out = compiled(
        "model U\ninput image: 3 x 4 x 4\nside = conv(2, kernel=1) from image\nout = flatten |> dense(2) from image\n"
    )
    model = out.module.build_model()
    assert not hasattr(model, "side")
    assert sum(p.numel() for p in model.parameters()) == out.checked.report.trainable_params == 98
    assert set(model.state_dict()) == {"out.dense.weight", "out.dense.bias"}
    assert model(torch.randn(1, 3, 4, 4)).shape == (1, 2)


def test_a_statement_named_x_does_not_clash_with_the_chain_variable(compiled):
    spec = "model X\ninput image: 3 x 4 x 4\nx = conv(4, kernel=1)\np = conv(4, kernel=1)\nq = tanh\nout = add(x, q)\n"
    model = compiled(spec).module.build_model()
    image = torch.randn(2, 3, 4, 4)
    with torch.no_grad():
        x = model.x(image)
        torch.testing.assert_close(model(image), x + torch.tanh(model.p(x)))
