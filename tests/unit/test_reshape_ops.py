"""`reshape` and `permute` in the front end: output shapes in each layout, the -1, no tensors
or MACs, the `shapes` table, and the diagnostics (E013, E004, E018) with file:line:col."""

from __future__ import annotations

import pytest

from archdsl.cli import main
from archdsl.compiler import check_source


def check(body: str, input_shape: str = "8 x 3 x 4"):
    return check_source(f"model T\ninput x: {input_shape}\ny = {body}\n", "t.arch")


@pytest.mark.parametrize(
    ("body", "out"),
    [
        ("reshape(96)", (96,)),  # map -> vector
        ("reshape(12, 8)", (12, 8)),  # map -> tokens
        ("reshape(2, 4, 12)", (2, 4, 12)),  # map -> map
        ("reshape(-1, 4, 6)", (4, 4, 6)),  # inferred
        ("reshape(d1=4, d2=-1)", (4, 24)),
        ("flatten |> reshape(6, 16)", (6, 16)),  # vector -> tokens
        ("to_tokens |> reshape(4, 3, -1)", (4, 3, 8)),  # tokens -> map
        ("permute(1, 2, 0)", (3, 4, 8)),  # C x H x W -> H x W x C
        ("permute(0, 2, 1)", (8, 4, 3)),
        ("to_tokens |> permute(1, 0)", (8, 12)),  # L x D -> D x L
        ("to_tokens |> permute(0, 1)", (12, 8)),
    ],
)
def test_output_shapes(body, out):
    checked = check(body)
    assert checked.ok, checked.diagnostics
    last = checked.report.layers[-1]
    assert last.output_shape == out and last.params == last.macs == 0


@pytest.mark.parametrize(
    ("body", "code", "column", "message", "hint"),
    [
        (
            "reshape(5, 5)",
            "E013",
            5,
            "reshape(5, 5) holds 25 elements, its input 8 x 3 x 4 has 96",
            "the dims' product must be 96 (write one dim as -1 to infer it)",
        ),
        (
            "reshape(-1, 5)",
            "E004",
            5,
            "reshape(-1, 5): the -1 cannot be inferred, 5 does not divide the 96 elements",
            "must divide the element count",
        ),
        ("reshape(-1, -1)", "E004", 17, "`d1` and `d2` are both -1", "give every dim but one"),
        ("reshape(96, 0)", "E004", 17, "`d2` of `reshape` is 0", ""),
        ("reshape(-3, 32)", "E004", 13, "`d1` of `reshape` is -3", ""),
        ("reshape(96, d3=1)", "E004", 20, "`d3` is given without `d2`", ""),
        ("permute(0, 0, 1)", "E004", 16, "`permute(0, 0, 1)` is not a permutation", "0, 1, 2"),
        ("permute(0, 3, 1)", "E004", 16, "is not a permutation of the axes 0 to 2", ""),
        (
            "permute(1, 0)",
            "E004",
            5,
            "permute(1, 0) reorders 2 axes, its input 8 x 3 x 4 (a C x H x W map) has 3",
            "give one axis per input axis, or an L x D token sequence",
        ),
        (
            "flatten |> permute(1, 0)",
            "E018",
            16,
            "permute needs a C x H x W map or an L x D token sequence, got 96",
            "move it before `flatten`",
        ),
    ],
)
def test_errors_point_at_the_call_or_the_argument(body, code, column, message, hint):
    (found,) = [d for d in check(body).diagnostics if d.severity == "error"]
    assert (found.code, found.span.file, found.span.line, found.span.column) == (
        code,
        "t.arch",
        3,
        column,
    )
    assert message in found.message and hint in found.hint, found


def test_token_ids_are_refused():
    (found,) = check("reshape(6)", "tokens 6 of 10").diagnostics
    assert found.code == "E018" and "reshape cannot read the integer ids" in found.message


def test_check_prints_file_line_col_and_the_hint(tmp_path, capsys):
    spec = tmp_path / "t.arch"
    spec.write_text("model T\ninput x: 8 x 3 x 4\ny = reshape(7, -1)\n")
    assert main(["check", str(spec)]) == 1
    out = capsys.readouterr()
    text = out.out + out.err
    assert f"{spec}:3:5: error[E004]: y: reshape(7, -1): the -1 cannot be inferred" in text
    assert "hint: the other dims' product must divide the element count" in text


def test_shapes_prints_each_layout_and_how(tmp_path, capsys):
    spec = tmp_path / "t.arch"
    body = "y = to_tokens |> permute(1, 0) |> reshape(2, -1, 3) |> reshape(96)"
    spec.write_text(f"model T\ninput x: 8 x 3 x 4\n{body}\n")
    assert main(["shapes", str(spec)]) == 0
    rows = {line.split()[0]: line.split()[1:] for line in capsys.readouterr().out.splitlines()}
    assert rows["y.permute"] == "permute 8 x 12 tokens - - axes (1, 0): 12 x 8 -> 8 x 12".split()
    how = "96 elements as 2 x 16 x 3 (-1 = 16)"
    assert rows["y.reshape"] == f"reshape 2 x 16 x 3 - - {how}".split()
    assert rows["y.reshape_2"] == "reshape 96 - - 96 elements as 96".split()
