"""`archdsl fmt` as a library: the shipped specs are its fixed points, and formatting any spec
keeps its meaning (the same tokens, IR and diagnostics), its comments, and is idempotent."""

from __future__ import annotations

import json
import re

import pytest
from core_helpers import BAD_DIR, ROOT, SHIPPED_SPECS, WARN_DIR, relative
from hypothesis import given, settings
from lark import Lark, Token
from test_front_end_properties import DETERMINISTIC, mutants

from archdsl.compiler import check_source
from archdsl.formatter import format_source
from archdsl.syntax import GRAMMAR, SyntaxFailure

CORPORA = sorted(
    [*BAD_DIR.glob("*.arch"), *WARN_DIR.glob("*.arch"), *(ROOT / "tests").rglob("specs/*.arch")]
)
_POSITIONS = re.compile(r"\b(line \d+|[\w<>.-]+:\d+:\d+)")


# the grammar's parser keeping every token: an independent reading of a formatted spec
_PARSER = Lark(GRAMMAR.read_text(encoding="utf-8"), parser="lalr", keep_all_tokens=True)


def _tokens(parser: Lark, text: str) -> list[tuple[str, str]]:
    """The spec's tokens as written (shapes with `x` unspaced), without trailing commas."""
    leaves = [t for t in parser.parse(text).scan_values(lambda v: isinstance(v, Token))]
    leaves.sort(key=lambda t: t.start_pos)
    words = [(t.type, re.sub(r"\s+", "", t).lower() if t.type == "DIMS" else t) for t in leaves]
    closers = (")", "]")
    return [
        word
        for i, word in enumerate(words)
        if not (word[1] == "," and i + 1 < len(words) and words[i + 1][1] in closers)
    ]


def _unplaced(data):
    """IR or diagnostic data without source positions (the formatter may move text)."""
    if isinstance(data, dict):
        return {k: _unplaced(v) for k, v in data.items() if "span" not in k and k != "file"}
    if isinstance(data, list):
        return [_unplaced(v) for v in data]
    return _POSITIONS.sub("<position>", data) if isinstance(data, str) else data


def _meaning(text: str) -> tuple:
    """What `archdsl ir` prints (positions left out), and every diagnostic."""
    checked = check_source(text, "spec.arch")
    graph = checked.graph.model_dump_json(by_alias=True) if checked.graph else "null"
    diagnostics = [(d.code, d.severity, _unplaced(d.message), d.hint) for d in checked.diagnostics]
    return _unplaced(json.loads(graph)), diagnostics


def _comments(text: str) -> list[str]:
    """Every comment's text, in order."""
    return [m.group().rstrip() for m in re.finditer(r"#[^\n]*", text)]


def _problems(parser: Lark, text: str) -> list[str]:
    """What formatting breaks in `text`: meaning, comments, idempotence (empty when nothing)."""
    formatted = format_source(text)
    found = []
    if format_source(formatted) != formatted:
        found.append("not idempotent")
    if _tokens(parser, formatted) != _tokens(parser, text):
        found.append("tokens changed")
    if _comments(formatted) != _comments(text):
        found.append("comments changed")
    if _meaning(formatted) != _meaning(text):
        found.append("IR or diagnostics changed")
    return found


def _messy(text: str) -> str:
    """The spec with its layout spoiled inside each line (the line breaks and comments kept):
    no indentation, no alignment, no spaces around `=` or in shapes, odd ones around commas."""
    lines = []
    for line in text.split("\n"):
        code, mark, comment = line.partition("#")
        code = re.sub(r" +", " ", code.strip())
        code = re.sub(r"(?<![=!<>]) = (?!=)", "=", code)
        code = re.sub(r"(\d) x (-?\d)", r"\1x\2", code).replace(", ", " ,  ").replace("(", "( ")
        lines.append(code + ("   " + mark + comment if mark else ""))
    return "\n".join(lines)


def test_every_shipped_spec_is_formatted():
    """`archdsl fmt` changes no shipped spec: they stay in the canonical layout."""
    changed = [relative(p) for p in SHIPPED_SPECS if format_source(p.read_text()) != p.read_text()]
    assert not changed, f"run `archdsl fmt` on {changed}"


def test_a_spoiled_layout_formats_back_to_the_shipped_spec():
    """Each shipped spec with its spacing, alignment and indentation spoiled formats back to
    itself, with the same tokens and IR on the way."""
    for path in SHIPPED_SPECS:
        text = path.read_text()
        messy = _messy(text)
        assert messy != text
        assert _tokens(_PARSER, messy) == _tokens(_PARSER, text), relative(path)
        assert format_source(messy) == text, relative(path)


def test_formatting_the_corpora_keeps_meaning_and_comments():
    """The bad and warn corpora and the test specs: same tokens, IR, diagnostics and comments
    after formatting, and a second pass changes nothing (those that do not parse are refused)."""
    refused, failures = 0, {}
    for path in CORPORA:
        text = path.read_text()
        try:
            found = _problems(_PARSER, text)
        except SyntaxFailure as exc:
            assert exc.diagnostic.code in ("E001", "E006")
            assert check_source(text, "<stdin>").diagnostics == [exc.diagnostic]
            refused += 1
            continue
        if found:
            failures[relative(path)] = found
    assert not failures
    assert 0 < refused < len(CORPORA) // 2


TRICKY = """\
# head comment

model   T   # the model


input x : 3x32X32   # input
# before init
init weight=normal( std = 0.01 )
init dense.bias=zeros  # zb
a=conv(8,kernel=3)|>relu  # first
     # between
  |> maxpool(2,
  # inside args
    stride=2,   # after stride
    pad=0)  expect 8 x 15 x 15
bb = flatten |> dense(10 ,) from a if 1 + (2 * 3) > -(-1)
c = dense(  # a place fmt does not break: the statement stays as written
  10)
block blk(n: int=2, m=-1 ,) {   # block header
  # first in block
  y=conv(n)


  z = relu   # z
  # end of block
}
train {
  batch=8
  augment=[hflip , random_crop(32,from=36),]  # aug


}
# last
"""

TRICKY_FORMATTED = """\
# head comment

model T  # the model

input x: 3 x 32 x 32  # input
# before init
init weight     = normal(std=0.01)
init dense.bias = zeros  # zb
a  = conv(8, kernel=3) |> relu  # first
   # between
   |> maxpool(2,
              # inside args
              stride=2,  # after stride
              pad=0) expect 8 x 15 x 15
bb = flatten |> dense(10) from a if 1 + (2 * 3) > -(-1)
c = dense(  # a place fmt does not break: the statement stays as written
  10)
block blk(n: int = 2, m = -1) {  # block header
  # first in block
  y = conv(n)

  z = relu  # z
  # end of block
}
train {
  batch   = 8
  augment = [hflip, random_crop(32, from=36)]  # aug
}
# last
"""


def test_comments_stay_where_they_belong():
    """Own-line comments before what they precede, end-of-line ones at the end of their line,
    inside pipelines and argument lists too; a comment where no break can go keeps its
    statement as written."""
    assert format_source(TRICKY) == TRICKY_FORMATTED
    assert _comments(TRICKY_FORMATTED) == _comments(TRICKY)
    assert not _problems(_PARSER, TRICKY)


def test_numbers_shapes_and_parentheses_are_kept_as_written():
    """Literals keep their spelling, `-` before a shape stays apart from it (else it would be a
    negative size), parentheses stay, and a keyword argument may be named `from`."""
    text = (
        "model M\ninput image: 3x8X8\n"
        "block b(k = - 3 x 3, s = - -1, p = (1 + 2) * 3 - (4 - 5), q = not (true and false)) {\n"
        "y = conv( 4 , kernel = 1e-0 , pad = .5 )|>dropout(1E-4)|>dropout(0.50)\n}\n"
        "z = b(k=(2 if 1 > 0 else 3) if true else 1)\n"
        "train { augment = [random_crop(8, from = 10)] }\n"
    )
    assert format_source(text) == (
        "model M\ninput image: 3 x 8 x 8\n"
        "block b(k = - 3 x 3, s = - -1, p = (1 + 2) * 3 - (4 - 5), q = not (true and false)) {\n"
        "  y = conv(4, kernel=1e-0, pad=.5) |> dropout(1E-4) |> dropout(0.50)\n}\n"
        "z = b(k=(2 if 1 > 0 else 3) if true else 1)\n"
        "train {\n  augment = [random_crop(8, from=10)]\n}\n"
    )


def test_long_pipelines_and_argument_lists_wrap_at_100_columns():
    """A pipeline breaks before `|>` (under the `=`), an argument list after a comma (under its
    first argument), where a line would pass 100 columns; the `expect` clause follows the last
    line of its statement."""
    ops = " |> ".join(f"conv({n}, kernel=3, pad=1)" for n in range(10, 16))
    args = ", ".join(f"[{n}, {n + 1}, {n + 2}]" for n in range(0, 60, 3))
    text = f"model M\ninput i: 3 x 8 x 8\nfeatures = {ops} expect 15 x 8 x 8\nx = f({args})\n"
    pipe, stride = " |> conv({}, kernel=3, pad=1)", "[{}, {}, {}]"
    assert format_source(text).split("\n")[2:-1] == [
        "features = conv(10, kernel=3, pad=1)" + pipe.format(11) + pipe.format(12),
        "         |> conv(13, kernel=3, pad=1)"
        + pipe.format(14)
        + pipe.format(15)
        + " expect 15 x 8 x 8",
        "x        = f(" + ", ".join(stride.format(n, n + 1, n + 2) for n in range(0, 21, 3)) + ",",
        " " * 13 + ", ".join(stride.format(n, n + 1, n + 2) for n in range(21, 39, 3)) + ",",
        " " * 13 + ", ".join(stride.format(n, n + 1, n + 2) for n in range(39, 57, 3)) + ",",
        " " * 13 + "[57, 58, 59])",
    ]


def test_a_spec_that_does_not_parse_gets_the_check_diagnostic():
    """format_source raises the front end's own diagnostic (file:line:col, E001)."""
    text = "model A\ninput x: 3 x 4 x 4\ny = conv(3,, kernel=1)\n"
    with pytest.raises(SyntaxFailure) as caught:
        format_source(text, "bad.arch")
    (expected,) = check_source(text, "bad.arch").diagnostics
    assert caught.value.diagnostic == expected
    assert (expected.span.line, expected.span.column) == (3, 12)


@pytest.mark.slow
def test_the_fuzz_corpus_formats_keeping_meaning():
    """Random valid specs of the differential fuzzer and their mutations, through the same
    checks as the corpora."""
    from difffuzz import harness

    valid, mutated = harness.labelled_specs(17, 400, 400)
    failures = {}
    for label, spec in valid + mutated:
        try:
            found = _problems(_PARSER, spec.text())
        except SyntaxFailure:
            continue
        if found:
            failures[label] = found
    assert not failures


def _mutant_formats_soundly(parser: Lark, text: str) -> None:
    """A mutated spec is refused with the front end's diagnostic, or formats keeping meaning."""
    try:
        assert not _problems(parser, text)
    except SyntaxFailure as exc:
        assert check_source(text, "<stdin>").diagnostics == [exc.diagnostic]


@settings(max_examples=40, **DETERMINISTIC)
@given(mutants())
def test_mutated_specs_format_soundly(text):
    """The front end's hypothesis mutants (odd characters, swapped tokens, shuffled lines)."""
    _mutant_formats_soundly(_PARSER, text)


@pytest.mark.slow
@settings(max_examples=3000, **DETERMINISTIC)
@given(mutants())
def test_many_mutated_specs_format_soundly(text):
    """As above, thousands of them."""
    _mutant_formats_soundly(_PARSER, text)
