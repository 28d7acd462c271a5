"""Where the Keras model must flatten in C, H, W order: wherever the order of the features
would show (an output, an `add`), and nowhere a dense layer absorbs it in its weights."""

from __future__ import annotations

import pytest
from archdsl.backends.keras.emitter import observed_flattens

from archdsl.compiler import check_source


def observed(body: str, input_shape: str = "2 x 3 x 3") -> set[str]:
    checked = check_source(f"model T\ninput x: {input_shape}\n{body}\n", "t.arch")
    assert checked.ok, checked.diagnostics
    return observed_flattens(checked.graph, checked.report)


@pytest.mark.parametrize(
    ("body", "want"),
    [
        ("y = flatten |> dense(4)", set()),
        ("y = flatten |> dropout |> relu |> batchnorm |> dense(4)", set()),
        ("y = flatten", {"y.flatten"}),
        ("y = flatten |> softmax", {"y.flatten"}),
        ("a = flatten\nb = tanh from a\ny = dense(3) from b", set()),
        ("a = flatten\nb = global_avgpool |> flatten from x\ny = concat(a, b) |> dense(2)", set()),
        ("a = flatten\nb = global_avgpool |> flatten from x\ny = concat(a, b)", {"a.flatten"}),
        ("a = flatten\nb = dense(18) from a\ny = add(a, b)", {"a.flatten"}),
        ("a = flatten\nb = flatten from x\ny = add(a, b) |> dense(2)", {"a.flatten", "b.flatten"}),
        ("a = flatten\nb = dense(3) from a\nc = relu from a\ny = concat(b, c)", {"a.flatten"}),
        ("y = global_avgpool |> flatten", set()),  # 2 x 1 x 1: the orders agree
        ("a = flatten\ny = flatten |> dense(2) from x", set()),  # a is never built (W103)
    ],
)
def test_observed_flattens(body, want):
    assert observed(body) == want


def test_single_channel_maps_need_no_permutation():
    assert observed("y = flatten", "1 x 4 x 4") == set()
