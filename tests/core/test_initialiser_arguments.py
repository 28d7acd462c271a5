"""trunc_normal and the nonlinearity of he_normal / he_uniform: what the front end accepts,
what it refuses (one E004/E006 at the initialiser), and the numbers it resolves."""

from __future__ import annotations

import math

import pytest

from archdsl import ir
from archdsl.compiler import check_source
from archdsl.initializers import layer_distributions

HEAD = "model T\ninput x: 8 x 4 x 4\n"


def first_conv(weight: str):
    """The checked graph's first conv op and its layer for `weight=...`."""
    checked = check_source(f"{HEAD}y = conv(16, kernel=3, weight={weight})\n", "t.arch")
    assert checked.ok, [d.message for d in checked.diagnostics]
    return checked.graph.statements[0].ops[0], checked.report.layers[0]


def test_trunc_normal_keeps_its_absolute_bounds():
    op, layer = first_conv("trunc_normal(std=0.1, low=-2, high=2)")
    assert op.weight_init == ir.TruncNormal(mean=0.0, std=0.1, low=-2.0, high=2.0)
    weight, _ = layer_distributions(op, layer.input_shape)
    assert (weight.kind, weight.a, weight.b, weight.bounds) == ("trunc_normal", 0, 0.1, (-2, 2))


@pytest.mark.parametrize(
    ("init", "nonlinearity", "gain"),
    [
        ("he_normal", "relu", math.sqrt(2)),
        ("he_normal", "tanh", 5 / 3),
        ("he_uniform", "sigmoid", 1.0),
        ("he_uniform", "linear", 1.0),
    ],
)
def test_he_initialisers_scale_by_the_nonlinearitys_gain(init, nonlinearity, gain):
    op, layer = first_conv(f"{init}(mode=fan_out, nonlinearity={nonlinearity})")
    weight, _ = layer_distributions(op, layer.input_shape)
    std = gain / math.sqrt(16 * 9)  # fan_out: filters x taps
    if init == "he_normal":
        assert weight.kind == "normal" and weight.b == pytest.approx(std, rel=1e-15)
    else:
        assert weight.kind == "uniform" and weight.b == pytest.approx(std * math.sqrt(3), rel=1e-15)


@pytest.mark.parametrize(
    ("weight", "code", "message"),
    [
        ("trunc_normal(std=0.1, low=2, high=-2)", "E004", "`trunc_normal` needs low < high"),
        ("trunc_normal(std=0, low=-2, high=2)", "E006", "`trunc_normal` needs a positive std"),
        ("trunc_normal(std=0.1, low=1, high=2)", "E004", "more than 2 std from [1, 2]"),
        ("trunc_normal(std=0.1, high=2)", "E005", "low"),
        ("he_uniform(nonlinearity=gelu)", "E004", "nonlinearity"),
    ],
)
def test_bad_initialiser_arguments_are_one_error_at_the_initialiser(weight, code, message):
    text = f"{HEAD}y = conv(16, kernel=3, weight={weight})\n"
    (d,) = check_source(text, "t.arch").diagnostics
    assert (d.code, d.span.line) == (code, 3) and message in d.message, (d.code, d.message)
    assert d.span.column >= text.splitlines()[2].index("weight=") + 1


def test_an_initialiser_missing_both_bounds_names_each():
    text = f"{HEAD}y = conv(16, kernel=3, weight=trunc_normal(std=0.1))\n"
    found = check_source(text, "t.arch").diagnostics
    assert sorted(d.code for d in found) == ["E005", "E005"]
    assert any("`low`" in d.message for d in found) and any("`high`" in d.message for d in found)
