"""`and`, `or`, `not` (Python's precedence, short-circuit) and `max(...)` / `min(...)` in
expressions: values against Python's own, diagnostics with their place and hint."""

from __future__ import annotations

import itertools

import pytest

from archdsl.binding import BindError
from archdsl.compiler import check_source
from archdsl.expressions import evaluate
from archdsl.syntax import Value, parse


def expression(text: str) -> Value:
    """`text` parsed as an argument value."""
    module = parse(f"model M\ninput x: 3\ny = f({text})\n", "t.arch")
    return module.items[-1].elements[0].args[0].value


def boolean(flag: bool) -> Value:
    """`true` or `false` as a bound value."""
    return Value("name", "true" if flag else "false", expression("0").span)


def run(text: str, **env) -> object:
    """The value of `text` with names bound to Python booleans or numbers; `true` -> True."""
    bound = {
        k: boolean(v) if isinstance(v, bool) else Value("number", v, expression("0").span)
        for k, v in env.items()
    }
    result = evaluate(expression(text), bound)
    return {"true": True, "false": False}.get(result.value, result.value)


BOOLEAN_EXPRESSIONS = [
    "a or b and c",
    "a and b or c",
    "not a or b",
    "not a and not b",
    "not a == b",
    "not a != b and c",
    "a or not b == c",
    "(a or b) and c",
    "not (a and b) or c",
    "a and b and c or not a",
    "a == b or b != c",
    "b if a or c else c",
    "a or b if c else a and b",
]


@pytest.mark.parametrize("text", BOOLEAN_EXPRESSIONS)
def test_logic_evaluates_as_python(text):
    python = text.replace("true", "True").replace("false", "False")
    for a, b, c in itertools.product((False, True), repeat=3):
        assert run(text, a=a, b=b, c=c) is eval(python, {}, {"a": a, "b": b, "c": c}), (a, b, c)


def test_comparisons_bind_tighter_than_not_and_or():
    for n in range(4):
        assert run("not n == 2 and n < 3 or n == 3", n=n) is ((not n == 2 and n < 3) or n == 3)


def test_and_or_short_circuit_as_python():
    # the side that would fail is never evaluated where the other decides
    assert run("false and 1 // 0 == 0") is False
    assert run("true or 1 // 0 == 0") is True
    assert run("false and 7") is False
    with pytest.raises(BindError, match="`//` needs"):
        run("true and 1 // 0 == 0")
    with pytest.raises(BindError, match="`//` needs"):
        run("false or 1 // 0 == 0")


@pytest.mark.parametrize(
    "text",
    ["max(3, 7, 5)", "min(3, 7, 5)", "max(2, 2.5)", "min(2, 2.5)", "max(-1, -4)", "min(4, 2.0)"],
)
def test_max_and_min_return_pythons_value_and_type(text):
    result = run(text)
    assert result == eval(text) and type(result) is type(eval(text))


def test_max_and_min_nest_and_read_names():
    make_divisible = "max(8, (v // 4 + 4) // 8 * 8)"  # torchvision's _make_divisible(v // 4, 8)
    for v in (16, 72, 96, 120, 960):
        assert run(make_divisible, v=v) == max(8, int(v // 4 + 8 / 2) // 8 * 8)
    assert run("min(max(n, 0), 6) + 1", n=9) == 7


def messages(text: str) -> list[tuple[str, int, int, str, str]]:
    """Each diagnostic of a spec: code, line, column, message, hint."""
    report = check_source(text, "t.arch")
    return [
        (d.code, d.span.line, d.span.column, d.message, d.hint or "") for d in report.diagnostics
    ]


HEAD = "model M\ninput x: 4 x 8 x 8\n"


def test_a_number_as_an_operand_of_and_or_is_an_error_with_a_hint():
    ((code, line, column, message, hint),) = messages(
        HEAD + "y = conv(4, kernel=1) if 1 and true\n"
    )
    assert (code, line, column) == ("E004", 3, 26)
    assert message == "each side of `and` must be `true` or `false`, got `1`"
    assert "stride != 1" in hint
    block = "block b(w: int) {\n  a = conv(w, kernel=1) if false or w\n}\ny = b(4)\n"
    ((code, line, column, message, hint),) = messages(HEAD + block)
    assert (code, line, column) == ("E004", 4, 37)
    got = "each side of `or` must be `true` or `false`, got `4`"
    assert message == f"{got} (in block `b` called at t.arch:6:5)"  # the call that gave w = 4
    assert hint


def test_a_statement_condition_that_is_a_number_gets_the_hint():
    ((code, _, _, message, hint),) = messages(HEAD + "y = conv(4, kernel=1) if 3\n")
    assert code == "E004" and "`if` must be `true` or `false`, got `3`" in message
    assert "comparison" in hint


@pytest.mark.parametrize(
    "call, column, message",
    [
        ("max(4)", 10, "`max` needs two or more numbers, got 1"),
        ("min()", 10, "`min` needs two or more numbers, got 0"),
        ("max(4, same)", 17, "`max` needs numbers, got `same`"),
        ("min(4, [1, 2])", 17, "`min` needs numbers, got a list"),
        ("max(4, b=2)", 17, "`max` takes no keyword arguments"),
    ],
)
def test_bad_max_and_min_calls_are_one_line_errors(call, column, message):
    ((code, line, col, text, _),) = messages(HEAD + f"y = conv({call}, kernel=1)\n")
    assert (code, line, col, text) == ("E004", 3, column, message)


def test_and_or_max_min_work_in_block_arguments_op_arguments_and_conditions():
    block = (
        "block b(w: int, stride: int = 1) {\n"
        "  a = conv(max(w, in.channels), kernel=1, stride=stride)\n"
        "  p = conv(w, kernel=1, stride=stride) from in  if in.channels != w or stride != 1\n"
        "  o = add(a, p)  if in.channels != w or stride != 1\n"
        "  o = add(a, in) if in.channels == w and stride == 1\n"
        "}\n"
    )
    calls = "u = b(min(4, 9), stride=max(1, 2))\nv = b(4)\n"
    report = check_source(HEAD + block + calls, "t.arch")
    assert report.ok, report.diagnostics
    shapes = list(report.report.outputs.values())
    assert shapes[-1] == (4, 4, 4)
    projections = [s for s in report.graph.statements if s.name.endswith("p")]
    assert len(projections) == 1  # the strided call of equal widths projects, the other not


def test_the_new_words_are_not_matched_inside_longer_names():
    spec = HEAD + "order = conv(4, kernel=1)\nandroid = conv(4, kernel=1) if not false\n"
    report = check_source(spec, "t.arch")
    assert report.ok, report.diagnostics
    assert [s.name for s in report.graph.statements] == ["order", "android"]


def test_max_and_min_stay_free_as_names():
    block = "block b(max: int, min: int = 1) {\n  a = conv(max(max, min), kernel=1)\n}\n"
    report = check_source(HEAD + block + "max = b(6)\nmin = conv(2, kernel=1)\n", "t.arch")
    assert report.ok, report.diagnostics
    assert list(report.report.outputs.values())[-2:] == [(6, 8, 8), (2, 8, 8)]
