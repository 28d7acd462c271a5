"""Swin's ops in the front end: shapes, counts and MACs from their definitions; bad arguments
and inputs get one diagnostic each, with a hint."""

import pytest

from archdsl.compiler import check_source


def checked(body, shape="8 x 9 x 9"):
    return check_source(f"model T\ninput image: {shape}\n{body}\n", "t.arch")


def only_error(result):
    (error,) = [d for d in result.diagnostics if d.severity == "error"]
    return error


def test_window_attention_keeps_the_map_and_counts_torchvisions_tensors_and_work():
    layer = checked("a = window_attention(2, window=4, shift=2)").report.layers[0]
    assert layer.output_shape == (8, 9, 9)
    # qkv 3C x C + 3C, proj C x C + C, table (2w - 1)^2 x heads
    assert layer.trainable_params == 3 * 64 + 24 + 64 + 8 + 49 * 2
    # over the 12 x 12 padded map: projections 4C^2, Q.K^T and A.V 2 w^2 C per position
    assert layer.macs == 144 * (4 * 64 + 2 * 16 * 8)
    assert layer.formula == "9 windows of 4x4, 2 heads, shifted by (2, 2)"


@pytest.mark.parametrize(
    "shape, formula",
    [("8 x 4 x 4", "1 window of 4x4, 2 heads, not shifted"),  # one window covers the map
     ("8 x 4 x 9", "3 windows of 4x4, 2 heads, shifted by (0, 2)")],  # the rows only
)  # fmt: skip
def test_the_shift_applies_only_along_axes_wider_than_a_window(shape, formula):
    layer = checked("a = window_attention(2, window=4, shift=2)", shape).report.layers[0]
    assert layer.formula == formula


def test_space_to_depth_stacks_each_patch_and_pads_odd_sizes():
    layer = checked("s = space_to_depth(2)", "3 x 5 x 8").report.layers[0]
    assert layer.output_shape == (12, 3, 4) and layer.params == 0
    assert layer.formula == "2x2 patches of 3 channels; H padded to 6"
    assert checked("s = space_to_depth(3)", "2 x 7 x 5").report.layers[0].output_shape == (
        18,
        3,
        2,
    )


@pytest.mark.parametrize(
    "body, code, message, hint",
    [
        (
            "a = window_attention(3, window=4)",
            "E008",
            "3 heads do not divide the 8 channels",
            "one of [1, 2, 4, 8]",
        ),
        (
            "a = window_attention(2, window=4, shift=4)",
            "E004",
            "shifts by 4, not less than its window of 4",
            "window // 2 = 2",
        ),
        (
            "a = flatten |> window_attention(2, window=4)",
            "E018",
            "window_attention needs a C x H x W map",
            "move it before `flatten`",
        ),
        ("a = flatten |> space_to_depth", "E018", "space_to_depth needs a C x H x W map", ""),
        ("a = window_attention(2)", "E005", "window", ""),
    ],
)
def test_bad_uses_are_one_diagnostic_with_a_hint(body, code, message, hint):
    error = only_error(checked(body))
    assert error.code == code and message in error.message and hint in error.hint
