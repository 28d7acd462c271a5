"""Diagnostics beyond code and position: messages, hints, odd inputs, robustness.

Each test here began as a front-end bug with a minimal reproducer (pinned as a strict xfail
until it was fixed).
"""

from __future__ import annotations

import contextlib
import io

import pytest
from core_helpers import BAD_DIR, INTERNAL_REPR, run_inprocess, run_subprocess

from archdsl import ir
from archdsl.cli import main
from archdsl.compiler import check_source
from archdsl.diagnostics import CATALOGUE, render

HEAD = "model T\ninput x: 3 x 32 x 32\n"


def diagnostics(text: str):
    return check_source(text, "t.arch").diagnostics


def only(text: str):
    """The single diagnostic of a spec."""
    (d,) = diagnostics(text)
    return d


# ----------------------------------------------------------------------------- catalogue


def test_catalogue_codes_are_stable():
    assert set(CATALOGUE) == (
        {f"E{n:03d}" for n in range(1, 20)} | {f"W{n}" for n in range(101, 107)} | {"I201", "I202"}
    )
    assert all(text and text == text.strip() for text in CATALOGUE.values())


# ----------------------------------------------------------------------------- the CLI


def test_missing_file_directory_and_non_utf8_are_usage_errors(capsys, tmp_path):
    code, _, err = run_inprocess(capsys, "check", str(tmp_path / "absent.arch"))
    assert code == 2 and "no such file" in err
    code, _, err = run_inprocess(capsys, "check", str(tmp_path))
    assert code == 2 and "is a directory" in err
    latin1 = tmp_path / "latin1.arch"
    latin1.write_bytes(b"model Caf\xe9\n")
    code, _, err = run_inprocess(capsys, "check", str(latin1))
    assert code == 2 and "not UTF-8" in err and "Traceback" not in err


def test_subprocess_check_of_a_clean_spec_exits_0():
    code, out, err = run_subprocess("check", "specs/mini_alexnet.arch")
    assert code == 0 and "Traceback" not in out + err
    assert "specs/mini_alexnet.arch: 2 infos" in err


def test_diagnostics_follow_a_redirected_stderr():
    path = BAD_DIR / "09_e002_unknown_op_cnov.arch"
    buffer = io.StringIO()
    with contextlib.redirect_stderr(buffer):
        assert main(["check", str(path)]) == 1
    assert f"{path}:6:5: error[E002]" in buffer.getvalue()


def test_a_byte_order_mark_is_ignored(capsys, tmp_path):
    path = tmp_path / "bom.arch"
    path.write_bytes(b"\xef\xbb\xbfmodel T\ninput x: 3 x 32 x 32\ny = relu\n")
    code, _, err = run_inprocess(capsys, "check", str(path))
    assert code == 0, err
    assert err.strip() == f"{path}: no problems"


# ----------------------------------------------------------------------------- expressions

FOLDED = [
    pytest.param(
        HEAD + "y = conv(8, kernel=3, weight=uniform(-0.1, 0.1))\n",
        lambda g: g.statements[0].ops[0].weight_init == ir.Uniform(low=-0.1, high=0.1),
        id="op-argument",  # works: op arguments are evaluated
    ),
]
NOT_FOLDED = [
    pytest.param(
        HEAD + "init weight = uniform(-0.1, 0.1)\ny = conv(8, kernel=3)\n",
        lambda g: g.statements[0].ops[0].weight_init == ir.Uniform(low=-0.1, high=0.1),
        id="init-uniform",
    ),
    pytest.param(
        HEAD + "init weight = normal(mean=-0.5, std=0.01)\ny = conv(8, kernel=3)\n",
        lambda g: g.statements[0].ops[0].weight_init == ir.Normal(mean=-0.5, std=0.01),
        id="init-normal-mean",
    ),
    pytest.param(
        HEAD
        + "y = flatten\ntrain {\n  augment = [normalize(mean=[-0.5, 0, 0.5], std=[1, 1, 1])]\n}\n",
        lambda g: g.train.augment[0].mean == (-0.5, 0, 0.5),
        id="train-normalize",
    ),
    pytest.param(
        HEAD + "y = flatten\ntrain {\n  batch = 64 * 2\n}\n",
        lambda g: g.train.batch == 128,
        id="train-arithmetic",
    ),
]


@pytest.mark.parametrize(
    "text, check",
    FOLDED
    + [
        pytest.param(
            *p.values,
            id=p.id,
        )
        for p in NOT_FOLDED
    ],
)
def test_expressions_are_evaluated_everywhere(text, check):
    checked = check_source(text, "t.arch")
    assert checked.diagnostics == []
    assert check(checked.graph)


# ----------------------------------------------------------------------------- messages


def test_undefined_name_hint_does_not_offer_the_statement_itself():
    d = only(HEAD + "y = conv(8, kernel=3) from q\n")
    assert d.code == "E010"
    assert "`y`" not in d.hint and "`x`" in d.hint


def test_syntax_hint_lists_only_what_can_follow():
    d = only(HEAD + "y = conv(8, kernel=3) $ relu\n")
    assert d.code == "E001"
    assert "`|>`" in d.hint
    for wrong in ("`)`", "`,`", "`]`", "`//`"):
        assert wrong not in d.hint, d.hint


@pytest.mark.parametrize(
    "text, wanted, unwanted",
    [
        pytest.param(
            HEAD + "y = relu\ntrain {\n  batch = 0\n}\n",
            "`batch`",
            "`value`",
            id="batch-zero-says-value-of-batch",
        ),
        pytest.param(
            HEAD + "y = relu\ntrain {\n  optimizer = 3\n}\n",
            "`3`",
            "this value",
            id="optimizer-number-says-this-value",
        ),
        pytest.param(
            HEAD + "y = conv(8, kernel=3, bias=3)\n",
            "`true`",
            "must be an initialiser",
            id="bias-number-omits-true-false",
        ),
        pytest.param(
            "model T\ninput x: 3 x -32 x 32\ny = relu\n",
            "negative",
            "expected `=`",
            id="negative-input-size-says-expected-equals",
        ),
    ],
)
def test_messages_say_what_is_wrong(text, wanted, unwanted):
    (d,) = [d for d in diagnostics(text) if d.severity == "error"]
    said = d.message + " " + d.hint
    assert wanted in said and unwanted not in said, said


@pytest.mark.parametrize(
    "text",
    [
        HEAD + "y = conv(8, kernel=3, strid=2)\n",
        HEAD + "y = cnov(8, kernel=3)\n",
        HEAD + "y = relu\ntrain {\n  epoch = 3\n}\n",
        HEAD + "init wieght = zeros\ny = conv(8, kernel=3)\n",
        HEAD + "y = resize(64 x 64, mode=bilnear)\n",
    ],
    ids=["argument", "op", "train-key", "init-target", "choice"],
)
def test_misspellings_get_a_did_you_mean(text):
    d = only(text)
    assert d.hint.startswith("did you mean `"), d.hint
    assert not any(internal in d.message for internal in INTERNAL_REPR)


# ----------------------------------------------------------------------------- odd input


LINE_BREAKS = ["\x0c", "\u2028", "\x85", "\x0b", "\x1c", "\r"]


@pytest.mark.parametrize("brk", LINE_BREAKS, ids=[f"U+{ord(c):04X}" for c in LINE_BREAKS])
def test_positions_after_other_line_breaks(brk):
    # an error at the end of the file: line 4 of 4 newline-separated lines, not line 5
    eof = HEAD + f"# a{brk}b\ny = conv(8, kernel=3) |>"
    (d,) = diagnostics(eof)
    assert (d.code, d.span.line, d.span.column) == ("E001", 4, 25)
    # an error elsewhere: the excerpt must quote line 4, not the text after the odd break
    text = HEAD + f"# a{brk}b\ny = cnov(8, kernel=3)\n"
    (d,) = diagnostics(text)
    assert (d.code, d.span.line) == ("E002", 4)
    assert " 4 | y = cnov(8, kernel=3)" in render(d, text)


def test_non_ascii_digits_are_rejected():
    assert any(d.severity == "error" for d in diagnostics(HEAD + "y = conv(٨, kernel=٣)\n"))


@pytest.mark.parametrize(
    "body, column",
    [
        ("block b() {\n  y = relu\n}\nz = b * 100000000000\n", 7),
        ("towers 100000000000 {\n  y = conv(8, kernel=3)\n}\n", 8),
    ],
    ids=["repetition", "towers"],
)
def test_huge_repetition_is_rejected_quickly(tmp_path, body, column):
    path = tmp_path / "huge.arch"
    path.write_text(HEAD + body, encoding="utf-8")
    code, _, err = run_subprocess("check", str(path), timeout=5)
    assert code == 1
    assert "error[E006]" in err and f":{column}: error[E006]" in err


def test_ceil_mode_window_may_overhang_a_small_input():
    checked = check_source(
        "model T\ninput x: 3 x 2 x 2\ny = maxpool(3, stride=2, ceil=true)\n", "t"
    )
    assert checked.diagnostics == []
    assert checked.report.outputs["y"] == (3, 1, 1)


def test_ceil_mode_last_window_may_overhang():
    """The same overhang is accepted for the last window of a larger input: 6 -> 3."""
    checked = check_source(
        "model T\ninput x: 3 x 6 x 6\ny = maxpool(3, stride=2, ceil=true)\n", "t"
    )
    assert checked.diagnostics == []
    assert checked.report.outputs["y"] == (3, 3, 3)
