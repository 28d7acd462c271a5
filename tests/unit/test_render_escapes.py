"""What a diagnostic prints from the input is made visible, lines up, and renders in linear time."""

from __future__ import annotations

import io
import json
import re
import time

import pytest
from cli_harness import TINY, archdsl, one_line_error

from archdsl import cli
from archdsl.compiler import Checked
from archdsl.diagnostics import EXCERPT_CHARS, Diagnostic, error, render, visible
from archdsl.ir import Span


@pytest.mark.parametrize(
    "raw, shown",
    [
        ("\x1b[2J", "\\x1b[2J"),
        ("a\tb\nc\rd", "a\\tb\\nc\\rd"),
        ("\x00\x07\x08\x0b\x0c\x1f", "\\x00\\x07\\x08\\x0b\\x0c\\x1f"),
        ("\x7f", "\\x7f"),
        ("\x80\x9b\x9f", "\\x80\\x9b\\x9f"),
        ("b\udcffd.arch", "b\\udcffd.arch"),
        ("\ud800", "\\ud800"),
        ("plain ascii: `conv(8)` ~!@#$%^&*", "plain ascii: `conv(8)` ~!@#$%^&*"),
        ("é 日本 \u00a0 ½", "é 日本 \u00a0 ½"),
        # format characters that reorder or hide text (bidirectional overrides, zero widths)
        ("a\u202eb\u2066c\u200bd\ufeff", "a\\u202eb\\u2066c\\u200bd\\ufeff"),
    ],
)
def test_visible_escapes_controls_format_characters_and_lone_surrogates(raw, shown):
    assert visible(raw) == shown
    assert visible(shown) == shown
    assert visible(raw).encode("utf-8")  # always encodable


def diagnostic(line: str, start: int, end: int, message: str = "bad", hint: str = "") -> tuple:
    """A diagnostic on line 2 of a source whose line 2 is `line`, spanning [start, end)."""
    span = Span(file="f.arch", line=2, column=start + 1, end_line=2, end_column=end + 1)
    return Diagnostic("E002", "error", span, message, hint), f"model T\n{line}\nz = relu\n"


def excerpt(rendered: str) -> tuple[str, str]:
    """The quoted source line and the caret line of a rendering, without their gutters."""
    lines = rendered.split("\n")
    quoted = next(line for line in lines if line.startswith(" 2 | "))
    carets = lines[lines.index(quoted) + 1]
    return quoted[len(" 2 | ") :], carets[len("   | ") :]


def test_a_control_character_before_the_span_keeps_the_carets_under_it():
    line = "y = \x1b[31m\x07 |> cnov(8)"
    d, source = diagnostic(line, line.index("cnov"), line.index("cnov") + 4)
    quoted, carets = excerpt(render(d, source))
    assert "\x1b" not in quoted and "\x07" not in quoted
    assert quoted == "y = \\x1b[31m\\x07 |> cnov(8)"
    assert carets == " " * quoted.index("cnov") + "^^^^"


def test_an_escaped_character_inside_the_span_gets_a_caret_per_column():
    line = "y = a\x1bb |> relu"
    d, source = diagnostic(line, 4, 7)
    quoted, carets = excerpt(render(d, source))
    assert quoted.startswith("y = a\\x1bb ")
    assert carets == "    " + "^" * len("a\\x1bb")


def test_wide_characters_take_two_columns():
    line = "y = 日本 |> cnov(8)"
    d, source = diagnostic(line, line.index("cnov"), line.index("cnov") + 4)
    quoted, carets = excerpt(render(d, source))
    assert quoted == line
    assert carets == " " * (line.index("cnov") + 2) + "^^^^"
    d, source = diagnostic(line, 4, 6)
    assert excerpt(render(d, source))[1] == "    ^^^^"


def test_a_tab_is_one_column_in_the_excerpt_and_visible_in_a_message():
    line = "y =\trelu |> cnov(8)"
    d, source = diagnostic(line, line.index("cnov"), line.index("cnov") + 4, "got `\t`")
    rendered = render(d, source)
    quoted, carets = excerpt(rendered)
    assert quoted == "y = relu |> cnov(8)" and carets == " " * quoted.index("cnov") + "^^^^"
    assert "got `\\t`" in rendered


def test_file_name_message_and_hint_are_made_visible_and_colour_stays_real():
    span = Span(file="a\x1b]0;pwned\x07.arch", line=1, column=1, end_line=1, end_column=2)
    d = Diagnostic("E002", "error", span, "unknown op `\x9b31m`", "did you mean `\x1b[8m`?")
    rendered = render(d, "\x1bx = 1\n", color=True)
    assert rendered.count("\x1b") == 2  # the two colour codes of the severity, nothing else
    assert rendered.startswith("a\\x1b]0;pwned\\x07.arch:1:1: \x1b[1;31merror[E002]\x1b[0m: ")
    assert "unknown op `\\x9b31m`" in rendered and "did you mean `\\x1b[8m`?" in rendered
    assert " 1 | \\x1bx = 1" in rendered


def test_a_very_long_line_is_cut_around_the_span():
    line = "y = relu" + " |> relu" * 2000 + " |> cnov(8)" + " |> relu" * 2000
    start = line.index("cnov")
    d, source = diagnostic(line, start, start + 4)
    quoted, carets = excerpt(render(d, source))
    assert len(quoted) == EXCERPT_CHARS + 6 and quoted.startswith("...") and quoted.endswith("...")
    assert quoted[len(carets) - 4 : len(carets)] == "cnov" and carets.endswith(" ^^^^")


def test_an_error_past_the_end_of_a_line_has_one_caret_after_it():
    d, source = diagnostic("y = relu |>", 11, 12)
    assert excerpt(render(d, source)) == ("y = relu |>", " " * 11 + "^")


def test_printing_many_diagnostics_is_linear_in_their_number():
    lines = 20_000
    source = "".join(f"y{i} = cnov(8) |> relu\n" for i in range(lines))
    diagnostics = [
        error("E002", Span(file="big.arch", line=i, column=6, end_line=i, end_column=10), "bad")
        for i in range(1, lines + 1)
    ]
    checked = Checked(source, "big.arch", diagnostics=diagnostics)
    stream = io.StringIO()
    began = time.perf_counter()
    cli._print_diagnostics(checked, stream)
    elapsed = time.perf_counter() - began
    text = stream.getvalue()
    assert text.count("error[E002]") == lines and f" {lines} | y{lines - 1} = cnov" in text
    assert elapsed < 3.0, f"{elapsed:.1f} s to print {lines} diagnostics"


# ----------------------------------------------------------------------------- through the CLI


def test_control_characters_of_a_spec_never_reach_the_terminal(tmp_path):
    spec = tmp_path / "bad.arch"
    spec.write_text("model T\ninput x: 3 x 8 x 8\ny = flatten |> \x1b[2J\x9b\n", encoding="utf-8")
    done = archdsl("check", spec, cwd=tmp_path)
    err = done.stderr.decode("utf-8")
    assert done.returncode == 1 and "Traceback" not in err
    assert "\x1b" not in err and "\x9b" not in err
    assert " 3 | y = flatten |> \\x1b[2J\\x9b" in err


HOSTILE_NAME = b"a\xff\x1b[31m\tb.arch"
SHOWN_NAME = "a\\udcff\\x1b[31m\\tb.arch"


@pytest.mark.parametrize(
    "command",
    [
        ["check"],
        ["check", "--format", "json"],
        ["shapes"],
        ["shapes", "--format", "json"],
        ["shapes", "--format", "markdown"],
        ["ir"],
        ["weights"],
        ["compile", "-o", HOSTILE_NAME + b".out"],
    ],
    ids=lambda c: " ".join(map(str, c)),
)
def test_a_file_name_that_is_neither_utf8_nor_printable_is_shown_escaped(tmp_path, command):
    (tmp_path / HOSTILE_NAME.decode("utf-8", "surrogateescape")).write_text(TINY)
    done = archdsl(command[0], HOSTILE_NAME, *command[1:], cwd=tmp_path)
    out, err = done.stdout.decode("utf-8"), done.stderr.decode("utf-8")
    assert done.returncode == 0, err
    assert "Traceback" not in err
    for raw in ("\x1b", "\t", "\udcff"):
        assert raw not in out + err
    if "json" in command or command == ["ir"]:
        assert SHOWN_NAME in json.loads(out)["file"]
    elif command[0] == "compile":
        assert re.match(rf"wrote \d+ files to {re.escape(SHOWN_NAME)}\.out/ \(", out)
    elif command in (["check"], ["shapes"]):  # markdown and weights do not name the file
        assert SHOWN_NAME in out + err


def test_a_file_name_in_a_usage_error_is_escaped(tmp_path):
    line = one_line_error(archdsl("check", b"no\x1b[2Jsuch\xff.arch", cwd=tmp_path))
    assert line == "error[usage]: no\\x1b[2Jsuch\\udcff.arch: no such file"


def test_flags_in_an_argparse_error_are_escaped_on_one_line(tmp_path):
    line = one_line_error(archdsl("check", "x.arch", "--\x1b[2J\xff", cwd=tmp_path))
    assert line.startswith("error[usage]: unrecognized arguments: --\\x1b[2J")
    line = one_line_error(archdsl("shapes", "x.arch", "--format", "\x1b", cwd=tmp_path))
    assert line.startswith("error[usage]: argument --format: invalid choice: '\\x1b'")


@pytest.mark.parametrize("command", [["check"], ["shapes"], ["ir"], ["weights"]])
def test_a_stdout_that_cannot_encode_the_output_gets_escapes(tmp_path, command):
    spec = tmp_path / "日本é.arch"
    spec.write_text(TINY.replace("logits = ", "# 日本\nlogits = "), encoding="utf-8")
    done = archdsl(*command, spec, cwd=tmp_path, env={"PYTHONIOENCODING": "ascii"})
    assert done.returncode == 0 and b"Traceback" not in done.stderr, done.stderr
    done.stdout.decode("ascii")
    done.stderr.decode("ascii")
