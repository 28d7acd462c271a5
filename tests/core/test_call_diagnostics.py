"""Calls with several problems report each of them; E013's hint names the input at fault."""

from __future__ import annotations

from archdsl.compiler import check_source

BLOCK = """model T
input x: 3 x 8 x 8
block y(k: int, s: int = 1, w: int = 2) {
  a = conv(k, kernel=3, stride=s)
}
"""


def errors(text: str) -> list:
    """(code, column) of every error of a spec, in order."""
    found = check_source(text, "t.arch").diagnostics
    return [(d.code, d.span.column) for d in found if d.severity == "error"]


def test_a_block_call_reports_unknown_repeated_and_mistyped_arguments_together():
    call = "a = y(1.5, k=4, s=3.5, t=4, w=2, w=3)"
    found = errors(BLOCK + call + "\n")
    # a mistyped value is pointed at; an argument that cannot be placed, at its name
    want = [("E004", "1.5"), ("E016", "k=4"), ("E004", "3.5"), ("E003", "t=4"), ("E016", "w=3")]
    assert found == [(code, call.index(text) + 1) for code, text in want]


def test_a_mistyped_default_free_block_call_is_still_one_error():
    assert errors(BLOCK + "a = y(2.5)\n") == [("E004", 7)]


def hint_of(statements: str) -> str:
    """The hint of the spec's one E013."""
    text = "model T\ninput x: 6 x 16 x 14\n" + statements
    (d,) = [d for d in check_source(text, "t.arch").diagnostics if d.severity == "error"]
    assert d.code == "E013", d.message
    return d.hint


def test_a_gate_of_other_channels_gets_the_mul_hint():
    hint = hint_of("q = global_avgpool |> conv(4, kernel=1)\ny = add(x, q)\n")
    assert "`mul(map, gate)` with a gate of 6 channels (it has 4)" in hint


def test_a_fitting_gate_beside_a_misfit_map_gets_the_projection_hint():
    statements = (
        "p = conv(1, kernel=1) from x\nq = global_avgpool from x\n"
        "r = conv(6, kernel=1) |> maxpool(1 x 3, stride=1 x 3, ceil=true) from x\n"
        "y = add(x, p, q, r)\n"
    )
    hint = hint_of(statements)
    assert "mul" not in hint and "project the shortcut" in hint
