"""Block conditions in Python (pyexpr.py) compute what archdsl's evaluation computes, or do not
translate: each is evaluated both ways over a grid of the values its names can take."""

import itertools

import pytest

from archdsl.expressions import truth
from archdsl.pyexpr import KIND_OF_PARAM, fill, python_condition
from archdsl.syntax import BlockDef, Value, parse

PARAMS = {"a": "int", "b": "int", "f": "bool", "g": "bool", "r": "float"}
GRID = {"a": (0, 1, 2, 7), "b": (1, 2, 3), "f": (True, False), "g": (True, False), "r": (0.5, 2.0)}
CONDITIONS = [
    "f",
    "not f",
    "a == b",
    "not a == b",
    "a != 1 or f",
    "f and not g or a < b",
    "not (f and g)",
    "(f or g) and not (a >= b)",
    "a - b - 1 < 0",
    "a - (b - 1) < 0",
    "a // b * 2 == a",
    "a / b > r",
    "-a + 2 <= b",
    "-(a + 2) < -b",
    "(a == b) == f",
    "(a if f else b) > 1",
    "f if a > 1 else g",
    "max(a, b, 2) == b",
    "min(a * 2, b + 1) >= 3",
    "in.channels != a or f",
    "a > 1 and b > 1 and r < 1",
]


def condition(text: str) -> Value:
    """The condition of `s = relu if TEXT` in a block, as parsed."""
    source = (
        "model M\ninput i: 3 x 4 x 4\n"
        f"block b(a: int, b: int, f: bool, g: bool, r: float) {{\n  s = relu if {text}\n}}\n"
    )
    block = next(item for item in parse(source, "t.arch").items if isinstance(item, BlockDef))
    return block.statements[0].condition


def archdsl_value(v: Value, values: dict) -> bool:
    """archdsl's own evaluation of a condition."""
    env = {}
    for name, value in values.items():
        if isinstance(value, bool):
            env[name] = Value("name", "true" if value else "false", v.span)
        else:
            env[name] = Value("number", value, v.span)
    return truth(v, env, "`if`")


@pytest.mark.parametrize("text", CONDITIONS)
def test_a_translated_condition_computes_what_archdsl_computes(text):
    kinds = {name: KIND_OF_PARAM[kind] for name, kind in PARAMS.items()} | {"in_channels": "number"}
    v = condition(text.replace("in.channels", "in_channels"))
    translated = python_condition(v, kinds)
    assert translated is not None, text
    names = sorted(set(translated.reads))
    for values in itertools.product(*(GRID.get(n, (3, 4)) for n in names)):
        bound = dict(zip(names, values, strict=True))
        expected = archdsl_value(v, bound)
        python = fill(translated.source, {n: repr(x) for n, x in bound.items()})
        assert eval(python) == expected, (text, python, bound)  # noqa: S307 - our own source


@pytest.mark.parametrize(
    "text",
    [
        "f == 1",  # never true in archdsl; True == 1 in Python
        "a == f",
        "(f if g else a) == 1",  # branches of different kinds
        "a",  # a number is no condition
        "h",  # a name no call binds
    ],
)
def test_a_condition_python_would_compute_otherwise_does_not_translate(text):
    kinds = {name: KIND_OF_PARAM[kind] for name, kind in PARAMS.items()}
    assert python_condition(condition(text), kinds) is None


def test_parentheses_only_where_python_needs_them():
    kinds = {name: KIND_OF_PARAM[kind] for name, kind in PARAMS.items()}
    pairs = {
        "a == 1 and not f": "{a} == 1 and not {f}",
        "not (f or g)": "not ({f} or {g})",
        "a - (b - 1) > 0": "{a} - ({b} - 1) > 0",
        "(a == b) == f": "({a} == {b}) == {f}",
    }
    for text, source in pairs.items():
        assert python_condition(condition(text), kinds).source == source
