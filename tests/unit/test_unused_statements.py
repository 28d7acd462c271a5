"""One rule for a statement that never reaches the output (W103): it is not part of the model.

`shapes` lists its layers (marked unused, with no parameters or MACs), the totals and the
portable weight layout leave it out, and neither backend builds it (the backend tests and the
conformance pocket tests/conformance/specs/flatten_orders.arch check the models themselves).
"""

from __future__ import annotations

from archdsl.compiler import check_source
from archdsl.report_format import as_data, as_table
from archdsl.weights import expected_tensors

SPEC = """model U
input x: 3 x 8 x 8
side = conv(16, kernel=3) |> batchnorm
y = conv(4, kernel=3) |> flatten |> dense(2) from x
"""
Y_CONV = 4 * 3 * 3 * 3 + 4
Y_DENSE = 4 * 6 * 6 * 2 + 2


def test_unused_statement_is_listed_but_not_counted():
    checked = check_source(SPEC, "u.arch")
    assert [d.code for d in checked.diagnostics] == ["W103"]
    report = checked.report
    layers = {layer.name: layer for layer in report.layers}
    assert not layers["side.conv"].built and not layers["side.batchnorm"].built
    assert layers["side.conv"].output_shape == (16, 6, 6)
    assert layers["side.conv"].params == layers["side.conv"].macs == 0
    assert report.total_params == report.trainable_params == Y_CONV + Y_DENSE
    assert report.total_macs == 4 * 27 * 36 + 4 * 36 * 2
    assert report.total_activations == 4 * 36 * 2 + 2


def test_unused_statement_has_no_portable_tensors():
    tensors = expected_tensors(check_source(SPEC, "u.arch").report)
    assert tensors == {
        "y.conv.weight": (4, 3, 3, 3),
        "y.conv.bias": (4,),
        "y.dense.weight": (2, 144),
        "y.dense.bias": (2,),
    }


def test_reports_mark_the_unused_layers():
    report = check_source(SPEC, "u.arch").report
    rows = {row["name"]: row for row in as_data(report, [], 1)["layers"]}
    assert rows["side.conv"]["built"] is False and rows["y.conv"]["built"] is True
    table = as_table(report, 1)
    (side,) = [line for line in table.splitlines() if line.startswith("side.conv ")]
    assert side.endswith("(unused: not built)")
    assert f"total params: {Y_CONV + Y_DENSE:,}" in table
