"""Block arguments: `size` parameters that may be zero, and every bad argument of a call."""

from __future__ import annotations

from archdsl.compiler import check_source


def check(text: str):
    """Check a spec given as text."""
    return check_source(text, "t.arch")


def errors(text: str) -> list[tuple[str, int, int]]:
    """(code, line, column) of every error."""
    found = check(text).diagnostics
    return [(d.code, d.span.line, d.span.column) for d in found if d.severity == "error"]


SIZE_BLOCK = """model T
input x: 3 x 8 x 8
block pad_conv(kernel: size, pad: size = 0 x 0) {
  c = conv(4, kernel=kernel, pad=pad)
}
"""


def test_a_size_parameter_accepts_zeros():
    c = check(SIZE_BLOCK + "y = pad_conv(1 x 7, pad=0 x 3)\n")
    assert c.ok, c.diagnostics
    (conv,) = c.graph.statements[0].ops
    assert (conv.kernel, conv.pad) == ((1, 7), (0, 3))
    assert c.report.outputs[c.graph.output] == (4, 8, 8)


def test_a_zero_size_is_still_refused_where_it_must_be_positive():
    """The kernel refuses 0 where it is used, inside the block."""
    assert errors(SIZE_BLOCK + "y = pad_conv(0 x 3)\n") == [("E006", 4, 22)]
    assert "must be positive" in check(SIZE_BLOCK + "y = pad_conv(0 x 3)\n").diagnostics[0].message


def test_a_negative_size_parameter_is_refused_at_the_call():
    assert errors(SIZE_BLOCK + "y = pad_conv(3, pad=-1)\n") == [("E006", 6, 21)]


def test_every_bad_argument_of_an_op_is_reported():
    text = "model T\ninput x: 3 x 8 x 8\ny = conv(0, kernel=0, stride=-1, strid=2)\n"
    assert errors(text) == [("E006", 3, 10), ("E006", 3, 20), ("E006", 3, 30), ("E003", 3, 34)]


def test_every_bad_argument_of_a_block_call_is_reported():
    text = SIZE_BLOCK + "y = pad_conv(1.5, pad=-1)\n"
    assert errors(text) == [("E004", 6, 14), ("E006", 6, 23)]


def test_a_missing_argument_is_reported_with_the_bad_ones():
    text = "model T\ninput x: 3 x 8 x 8\ny = conv(kernel=0)\n"
    assert errors(text) == [("E005", 3, 5), ("E006", 3, 17)]


def test_a_misplaced_argument_does_not_also_count_as_missing():
    """`conv(filters=8, 3)`: the 3 was meant for kernel; E016 alone, no E005 for kernel."""
    assert errors("model T\ninput x: 3 x 8 x 8\ny = conv(filters=8, 3)\n") == [("E016", 3, 21)]


def test_several_bad_arguments_print_one_diagnostic_each(tmp_path, capsys):
    from archdsl.cli import main

    path = tmp_path / "bad.arch"
    path.write_text("model T\ninput x: 3 x 8 x 8\ny = maxpool(0, stride=0 x 2, ceil=maybe)\n")
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    for column in (13, 23, 35):
        assert f"{path}:3:{column}: error[" in err, err
    assert err.rstrip().endswith("3 errors")
