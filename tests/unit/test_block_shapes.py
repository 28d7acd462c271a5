"""Blocks that read their input's shape (`in.channels`) and their place in the model
(`position`, `positions`), against torchvision's drop-rate formulas."""

from __future__ import annotations

from archdsl.compiler import check_source


def check(text: str):
    """Check a spec given as text."""
    return check_source(text, "t.arch")


def errors(text: str) -> list[tuple[str, int, int]]:
    """(code, line, column) of every error."""
    found = check(text).diagnostics
    return [(d.code, d.span.line, d.span.column) for d in found if d.severity == "error"]


def ops_of(checked, kind: str) -> list:
    """Every op of one kind in the graph, in statement order."""
    return [op for s in checked.graph.statements for op in s.ops if op.op == kind]


SE = """model T
input image: 3 x 16 x 16
block se(squeeze: int = 4) {
  gate = global_avgpool |> conv(in.channels // squeeze, kernel=1) |> relu
       |> conv(in.channels, kernel=1) |> sigmoid
  out = mul(in, gate)
}
block unit(width: int, stride: int = 1) {
  a = conv(width, kernel=3, stride=stride, pad=1) |> relu
  b = se
  short = conv(width, kernel=1, stride=stride) from in  if in.channels != width
  out = add(b, short)  if in.channels != width
  out = add(b, in)     if in.channels == width
}
stem = conv(8, kernel=3, pad=1)
"""


def test_a_block_reads_its_inputs_channels_in_arguments_and_conditions():
    c = check(SE + "s1 = unit(8) * 2\ns2 = unit(16, stride=2) |> unit(16)\n")
    assert c.ok, c.diagnostics
    squeezes = [op.filters for op in ops_of(c, "conv") if op.kernel == (1, 1)]
    # the gates' 1x1 convs (in.channels // 4, in.channels), and one projection, where the
    # input's channels differ from the width
    assert squeezes == [2, 8, 2, 8, 4, 16, 16, 4, 16]
    names = {s.name for s in c.graph.statements}
    assert "s2.0.short" in names and "s1.0.short" not in names and "s2.1.short" not in names
    assert c.report.outputs[c.graph.output] == (16, 8, 8)


def test_height_and_width_read_the_map_and_the_caller_can_pass_them_on():
    text = """model T
input image: 3 x 12 x 12
block pool_all() {
  p = avgpool(in.height, stride=in.width)
}
pooled = pool_all
y = flatten
"""
    c = check(text)
    assert c.ok, c.diagnostics
    assert c.report.outputs["y"] == (3,)


def test_shape_errors_above_a_shape_query_are_reported_once():
    text = SE + "bad = conv(4, kernel=40)\ns1 = unit(8)\n"
    assert errors(text) == [("E007", 16, 7)]


def test_shape_attributes_that_do_not_exist():
    block = "model T\ninput v: 8\nblock b() {\n  d = dense(in.SIZE)\n}\ny = b\n"
    assert errors(block.replace("SIZE", "height")) == [("E018", 4, 13)]
    assert errors(block.replace("SIZE", "chanels")) == [("E003", 4, 13)]
    checked = check(block.replace("SIZE", "channels"))
    assert checked.report.outputs[checked.graph.output] == (8,)
    top = "model T\ninput v: 8\ny = dense(in.channels)\n"
    assert errors(top) == [("E010", 3, 11)]


def test_the_block_input_is_a_tensor_not_a_number():
    text = "model T\ninput v: 8\nblock b() {\n  d = dense(in)\n}\ny = b\n"
    (d,) = check(text).diagnostics
    assert d.code == "E004" and "the tensor `in`" in d.message and "in.channels" in d.message


def test_the_input_must_be_defined_above_the_call():
    text = SE + "s1 = unit(8) from later\nlater = conv(8, kernel=1) from stem\n"
    assert errors(text) == [("E010", 4, 33)]


def test_blocks_inside_towers_cannot_read_shapes():
    text = SE.replace("stem = ", "towers 2 {\n  stem = ") + "  s1 = se\n}\n"
    assert errors(text) == [("E004", 4, 33)]
    assert "inside `towers`" in check(text).diagnostics[0].message


# torchvision's drop rates, counted over every block of the model
def efficientnet_rates(total: int, p: float = 0.2) -> list[float]:
    """torchvision.models.efficientnet: sd_prob = p * float(stage_block_id) / total_stage_blocks."""
    return [p * float(block_id) / total for block_id in range(total)]


def convnext_rates(total: int, p: float = 0.1) -> list[float]:
    """torchvision.models.convnext: sd_prob = p * stage_block_id / (total_stage_blocks - 1.0)."""
    return [p * block_id / (total - 1.0) for block_id in range(total)]


STAGES = """model T
input image: 3 x 8 x 8
block mb(width: int, drop: float) {
  c = conv(width, kernel=3, pad=1) |> relu |> dropout(drop)
}
block stage(width: int) {
  s = conv(width, kernel=1)
}
"""


def test_positions_count_calls_across_stages_as_efficientnet_does():
    text = STAGES + (
        "s1 = mb(4, drop=0.2 * position / positions) * 2\n"
        "s2 = mb(8, drop=0.2 * position / positions) * 3\n"
        "s3 = mb(8, drop=0.2 * position / positions)\n"
    )
    c = check(text)
    assert c.ok, c.diagnostics
    assert [op.p for op in ops_of(c, "dropout")] == efficientnet_rates(6)


def test_positions_reach_nested_calls_as_convnext_counts_them():
    text = STAGES.replace(
        "  s = conv(width, kernel=1)", "  s = mb(width, drop=0.1 * position / (positions - 1)) * 2"
    ) + ("s1 = stage(4)\ns2 = stage(8) |> stage(8)\n")
    c = check(text)
    assert c.ok, c.diagnostics
    assert [op.p for op in ops_of(c, "dropout")] == convnext_rates(6)


def test_index_is_the_repetition_and_position_the_place_in_the_model():
    text = STAGES + "s1 = mb(4, drop=0) * 2\ns2 = mb(4, drop=0.1 * index + 0.01 * position) * 2\n"
    c = check(text)
    assert [op.p for op in ops_of(c, "dropout")] == [0, 0, 0.02, 0.1 + 0.03]


def test_a_structure_that_depends_on_positions_is_refused():
    text = (
        STAGES.replace("  s = conv(width, kernel=1)", "  s = mb(width, drop=0) if positions < 100")
        + "s1 = stage(4) * 2\n"
    )
    assert [code for code, _, _ in errors(text)] == ["E004"]
    assert "depends on `positions`" in check(text).diagnostics[0].message


def test_true_division_by_zero_is_an_error():
    text = STAGES + "s1 = mb(4, drop=0.1 * position / (positions - 1))\n"
    assert errors(text) == [("E004", 9, 17)]


def test_a_statement_that_failed_to_lower_is_not_reported_again():
    text = SE + "bad = conv(0, kernel=1)\ns1 = unit(8) from bad\n"
    assert errors(text) == [("E006", 16, 12)]


def test_a_call_reading_its_own_shape_is_an_error_not_silence():
    text = SE + "s1 = se from s1\n"
    assert errors(text) == [("E010", 4, 33)]
