"""Each op's shape rule against hand-computed cases."""

from __future__ import annotations

import pytest

from archdsl.compiler import check_source
from archdsl.shapes import resolve_padding, window_out


def run(body: str, input_shape: str = "3 x 32 x 32"):
    """Check a one-input spec; return (layers by name, diagnostics)."""
    checked = check_source(f"model T\ninput x: {input_shape}\n{body}\n", "t.arch")
    layers = {layer.name: layer for layer in checked.report.layers} if checked.report else {}
    return layers, checked.diagnostics


def out(body: str, input_shape: str = "3 x 32 x 32", name: str = "y.conv"):
    """The output shape of one layer, asserting the spec has no errors."""
    layers, diags = run(body, input_shape)
    assert not [d for d in diags if d.severity == "error"], diags
    return layers[name].output_shape


def codes(body: str, input_shape: str = "3 x 32 x 32") -> list[str]:
    """The diagnostic codes of a spec."""
    return [d.code for d in run(body, input_shape)[1]]


@pytest.mark.parametrize(
    "size, kernel, stride, pad, expected",
    [
        (227, 11, 4, 0, 55),  # AlexNet conv1: (227 - 11) / 4 + 1
        (224, 11, 4, 0, 54),  # 54.25 rounded down
        (224, 11, 4, 2, 55),  # torchvision: (224 + 4 - 11) / 4 + 1 = 55.25
        (27, 5, 1, 2, 27),
        (13, 3, 1, 1, 13),
        (7, 7, 1, 0, 1),
    ],
)
def test_conv_floor(size, kernel, stride, pad, expected):
    body = f"y = conv(8, kernel={kernel}, stride={stride}, pad={pad})"
    assert out(body, f"3 x {size} x {size}") == (8, expected, expected)


def test_conv_rectangular_kernel_stride_and_dilation():
    # H: (20 - (2*(3-1)+1)) / 1 + 1 = 16 ; W: (30 + 2 - 5) / 2 + 1 = 14.5 -> 14
    body = "y = conv(4, kernel=3 x 5, stride=1 x 2, pad=0 x 1, dilation=2 x 1)"
    assert out(body, "3 x 20 x 30") == (4, 16, 14)


@pytest.mark.parametrize(
    "size, kernel, stride, pad, ceil, expected",
    [
        (55, 3, 2, 0, False, 27),
        (54, 3, 2, 0, False, 26),  # 26.5 down
        (54, 3, 2, 0, True, 27),  # Caffe-style: 26.5 up
        (5, 2, 2, 1, True, 3),  # ceil gives 4, but the 4th window starts in the padding
        (6, 3, 3, 0, True, 2),  # exact: ceil changes nothing
        (13, 3, 2, 0, True, 6),
    ],
)
def test_maxpool_floor_and_ceil(size, kernel, stride, pad, ceil, expected):
    flag = "true" if ceil else "false"
    body = f"y = maxpool({kernel}, stride={stride}, pad={pad}, ceil={flag})"
    assert out(body, f"2 x {size} x {size}", "y.maxpool") == (2, expected, expected)


def test_window_out_matches_pytorch_ceil_rule():
    # PyTorch: out = ceil((in + 2p - k) / s) + 1, minus 1 if the last window starts in padding
    for size in range(3, 30):
        for k in (2, 3):
            for s in (1, 2, 3):
                for p in range(0, k // 2 + 1):
                    span = size + 2 * p - k
                    o = -(-span // s) + 1
                    if (o - 1) * s >= size + p:
                        o -= 1
                    assert window_out(size, k, s, p, p, 1, True, pool=True) == o


@pytest.mark.parametrize(
    "size, kernel, stride, expected_pad, expected_out",
    [
        (224, 3, 2, (0, 1), 112),  # even input: the extra row goes after (TensorFlow)
        (225, 3, 2, (1, 1), 113),
        (224, 11, 4, (3, 4), 56),
        (32, 5, 1, (2, 2), 32),
        (6, 1, 4, (0, 0), 2),  # same never pads negatively
    ],
)
def test_same_padding_with_stride(size, kernel, stride, expected_pad, expected_out):
    assert resolve_padding("same", size, kernel, stride) == expected_pad
    body = f"y = conv(4, kernel={kernel}, stride={stride}, pad=same)"
    assert out(body, f"3 x {size} x {size}") == (4, expected_out, expected_out)


def test_valid_padding_is_zero():
    assert resolve_padding("valid", 10, 3, 1) == (0, 0)
    assert out("y = conv(4, kernel=3, pad=valid)", "3 x 10 x 10") == (4, 8, 8)


def test_pools_default_stride_is_kernel():
    assert out("y = avgpool(2)", "5 x 8 x 8", "y.avgpool") == (5, 4, 4)


def test_global_and_adaptive_pool_and_resize():
    layers, _ = run(
        "y = global_avgpool\nz = adaptive_avgpool(6 x 6) from x\nr = resize(7 x 9) from x"
    )
    assert layers["y.global_avgpool"].output_shape == (3, 1, 1)
    assert layers["z.adaptive_avgpool"].output_shape == (3, 6, 6)
    assert layers["r.resize"].output_shape == (3, 7, 9)


def test_flatten_order_and_dense():
    layers, diags = run("y = conv(256, kernel=1) |> flatten |> dense(10)", "3 x 6 x 6")
    assert layers["y.flatten"].output_shape == (9216,)
    assert layers["y.dense"].output_shape == (10,)
    assert layers["y.dense"].trainable_params == 9216 * 10 + 10


def test_dense_on_spatial_map_says_flatten_and_its_size():
    layers, diags = run("y = dense(10)", "256 x 6 x 6")
    (d,) = diags
    assert d.code == "E012"
    assert "flatten" in d.hint and "9216" in d.hint


def test_concat_and_add():
    layers, diags = run("a = conv(4, kernel=1)\nb = conv(6, kernel=1) from x\nc = concat(a, b)")
    assert layers["c.concat"].output_shape == (10, 32, 32)
    assert codes("a = conv(4, kernel=1)\nb = conv(6, kernel=1) from x\nc = add(a, b)") == ["E013"]
    assert codes("a = conv(4, kernel=1)\nb = maxpool(2) from x\nc = concat(a, b)") == ["E013"]


def test_grouped_conv_params_and_divisibility():
    layers, _ = run("y = conv(256, kernel=5, groups=2)", "96 x 27 x 27")
    assert layers["y.conv"].trainable_params == 256 * 48 * 25 + 256
    assert codes("y = conv(256, kernel=5, groups=3)", "96 x 27 x 27") == ["E008"]
    assert codes("y = conv(10, kernel=1, groups=4)", "8 x 4 x 4") == ["E008"]


def test_batchnorm_counts_running_statistics_as_non_trainable():
    layers, _ = run("y = batchnorm", "64 x 4 x 4")
    assert layers["y.batchnorm"].trainable_params == 128
    assert layers["y.batchnorm"].frozen_params == 128


def test_conv_macs_exclude_bias():
    layers, _ = run("y = conv(8, kernel=3, pad=1, groups=2)", "4 x 5 x 5")
    assert layers["y.conv"].macs == 8 * 5 * 5 * (4 // 2) * 9


def test_kernel_larger_than_input_is_e007():
    assert codes("y = conv(8, kernel=7)", "3 x 5 x 5") == ["E007"]
    assert codes("y = maxpool(3, stride=2)", "3 x 2 x 2") == ["E007"]


def test_non_tiling_window_warns_with_sizes_that_tile():
    _, diags = run("y = conv(96, kernel=11, stride=4)", "3 x 224 x 224")
    (d,) = diags
    assert d.code == "W101" and "54.25" in d.message
    assert "227" in d.hint and "223" in d.hint
    _, diags = run("y = conv(96, kernel=11, stride=4)", "3 x 227 x 227")
    assert diags == []


def test_non_tiling_on_one_axis_names_that_axis():
    _, diags = run("y = conv(4, kernel=3, stride=2)", "3 x 9 x 10")
    (d,) = diags
    assert "column" in d.message and "row" not in d.message


def test_collapse_to_one_by_one_before_a_larger_kernel():
    body = "a = conv(4, kernel=3, stride=4, pad=same)\nb = conv(4, kernel=3, pad=same)"
    assert codes(body, "3 x 3 x 3") == ["W102"]


def test_expect_mismatch_points_at_expect():
    _, diags = run("y = conv(8, kernel=3)   expect 8 x 32 x 32")
    (d,) = diags
    assert d.code == "E014" and d.span.line == 3 and d.span.column == 25
    assert "8 x 30 x 30" in d.message


def test_rank_errors():
    assert codes("y = flatten |> lrn", "3 x 4 x 4") == ["E018"]
    assert codes("y = flatten |> conv(4, kernel=1)", "3 x 4 x 4") == ["E018"]


def test_ceil_mode_conv_rounds_up_and_keeps_its_last_window():
    """A conv rounds up in ceil mode (cuda-convnet's rule) and, unlike a pool, keeps a last
    window that starts in the padding: with padding of at least the kernel, ceil=true must
    never give fewer outputs than floor (issue 19: 5 + 2 padding, kernel 1, stride 2)."""
    layers, _ = run("y = conv(1, kernel=1, stride=2, pad=1, ceil=true)", "1 x 5 x 5")
    assert layers["y.conv"].output_shape == (1, 4, 4)
    assert layers["y.conv"].formula == "ceil((5 + 2 - 1) / 2) + 1 = 4"
    for size in range(1, 12):
        for kernel in (1, 2, 3):
            for stride in (1, 2, 3):
                for pad in range(0, 4):
                    body = f"y = conv(1, kernel={kernel}, stride={stride}, pad={pad}, ceil=%s)"
                    spans = size + 2 * pad - kernel
                    if spans < 0:
                        continue
                    floor = out(body % "false", f"1 x {size} x {size}")[1]
                    ceil = out(body % "true", f"1 x {size} x {size}")[1]
                    assert ceil == -(-spans // stride) + 1 >= floor


def test_ceil_mode_pool_formula_shows_the_dropped_window():
    """5 + 2 padding, window 2, stride 2: ceil(5 / 2) + 1 = 4 windows, but the 4th would start
    at cell 6, in the padding after the input (PyTorch drops it): 3."""
    layers, _ = run("y = maxpool(2, stride=2, pad=1, ceil=true)", "1 x 5 x 5")
    assert layers["y.maxpool"].output_shape == (1, 3, 3)
    assert layers["y.maxpool"].formula == (
        "ceil((5 + 2 - 2) / 2) + 1 - 1 = 3 (the last window would start in the padding)"
    )


def test_output_map_with_a_train_section_warns_w105():
    """The trainers train classifiers: a map output cannot be, which `check` says (W105 at the
    output's last op) when the spec asks to be trained; without a `train` section it is a
    feature extractor and nothing is said."""
    trained = "y = conv(4, kernel=3)\ntrain { epochs = 2 }"
    layers, diags = run(trained, "3 x 8 x 8")
    (d,) = diags
    assert d.code == "W105" and d.severity == "warning" and (d.span.line, d.span.column) == (3, 5)
    assert "4 x 6 x 6 map" in d.message and "global_avgpool |> flatten |> dense" in d.hint
    assert codes("y = conv(4, kernel=3)", "3 x 8 x 8") == []
    assert codes("y = conv(4, kernel=3) |> flatten\ntrain { epochs = 2 }", "3 x 8 x 8") == []


def test_a_layer_past_two_billion_elements_warns_w106():
    """120 billion parameters in one dense layer, and a map of 2^31 values per example, are
    beyond what one tensor can be on most devices: a warning at the op, with the size."""
    layers, diags = run("y = flatten |> dense(100000)", "3 x 400 x 1000")
    (d,) = [d for d in diags if d.code == "W106"]
    assert layers["y.dense"].params == 1_200_000 * 100_000 + 100_000
    assert "120,000,100,000 parameters" in d.message and (d.span.line, d.span.column) == (3, 16)
    _, diags = run("y = conv(2048, kernel=1) |> flatten |> dense(2)", "3 x 1024 x 1024")
    (conv, dense) = diags
    assert (conv.code, conv.span.column, dense.code, dense.span.column) == ("W106", 5, "W106", 40)
    assert "2,147,483,648 output values per example" in conv.message
    assert "4,294,967,298 parameters" in dense.message
    assert codes("y = flatten |> dense(1000)", "3 x 400 x 1000") == []
