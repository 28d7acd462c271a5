"""Bad arguments of issue 12's ops: one diagnostic each, at the argument, one line, a hint."""

from __future__ import annotations

import pytest
from core_helpers import run_inprocess

from archdsl.compiler import check_source

HEAD = "model T\ninput x: 3 x 8 x 8\n"

CASES = [
    # (statement, code, column, a fragment of the message, a fragment of the hint)
    ("y = conv(4, kernel=1) |> gelu(approximate=foo)", "E004", 43, "none, tanh", "`tanh`"),
    ("y = gelu(approximate=1)", "E004", 22, "approximate", "`none`"),
    ("y = stochastic_depth(p=1.5)", "E004", 24, "probability", "from 0"),
    ("y = stochastic_depth(-0.1)", "E004", 22, "not -0.1", "(always drop)"),
    ("y = stochastic_depth", "E005", 5, "`p`", "`p=...`"),
    ("y = layer_scale(init=small)", "E004", 22, "init", "a number such as"),
    ("y = layernorm(eps=0)", "E004", 19, "greater than 0", "use a value above 0"),
]


@pytest.mark.parametrize("statement, code, column, message, hint", CASES)
def test_bad_arguments_get_one_diagnostic_at_the_argument(statement, code, column, message, hint):
    (d,) = check_source(HEAD + statement + "\n", "t.arch").diagnostics
    assert (d.code, d.span.line, d.span.column) == (code, 3, column)
    assert message in d.message and "\n" not in d.message
    assert hint in d.hint and "\n" not in d.hint


def test_the_command_line_prints_it_in_one_line_with_its_hint(capsys, tmp_path):
    spec = tmp_path / "sd.arch"
    spec.write_text(HEAD + "y = stochastic_depth(p=1.5)\n", encoding="utf-8")
    code, out, err = run_inprocess(capsys, "check", str(spec))
    text = out + err
    assert code == 1 and "Traceback" not in text
    assert f"{spec}:3:24: error[E004]: stochastic_depth's p is the probability" in text
    assert "= hint: use a value from 0 (never drop) to 1 (always drop)" in text
