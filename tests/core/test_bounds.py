"""The front end is bounded in time, memory and recursion on any input.

`check_source` never raises (no ValueError from a 5,000-digit literal, no RecursionError from
deep nesting), every size has the same cap, and what goes past a limit is one E006 at the place
where it happens, with a hint. Long inputs take time linear in their length; what blocks,
`* N` and towers multiply is capped before it is built.
"""

from __future__ import annotations

import random
import re
import sys
import time

import pytest
from core_helpers import SHIPPED_SPECS
from heavy_specs import is_heavy

from archdsl import blocks, syntax
from archdsl.compiler import check_source
from archdsl.syntax import (
    MAX_DEPTH,
    MAX_DIGITS,
    MAX_OPS_PER_STATEMENT,
    MAX_SIZE,
    MAX_STATEMENTS,
    MAX_TERMS,
)

HEAD = "model T\ninput x: 3 x 32 x 32\n"
HUGE = "9" * 5000  # past Python's 4,300-digit limit for int(str)


def errors(text: str) -> list[tuple[str, int, int, str, str]]:
    """(code, line, column, message, hint) of every error of a spec."""
    checked = check_source(text, "t.arch")
    return [
        (d.code, d.span.line, d.span.column, d.message, d.hint)
        for d in checked.diagnostics
        if d.severity == "error"
    ]


def position(text: str, fragment: str) -> tuple[int, int]:
    """Line and column (1-based) where `fragment` first occurs in `text`."""
    offset = text.index(fragment)
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def timed(text: str) -> tuple[list, float]:
    """The errors of a spec and the seconds checking it took."""
    start = time.perf_counter()
    found = errors(text)
    return found, time.perf_counter() - start


# ----------------------------------------------------------------------------- huge numbers

NUMBER_PLACES = {
    "argument": HEAD + "y = conv({n}, kernel=3)\n",
    "input": "model T\ninput x: 3 x {n} x 5\ny = flatten\n",
    "single input": "model T\ninput x: {n}\ny = dense(10)\n",
    "dims argument": HEAD + "y = conv(4, kernel={n} x 3)\n",
    "dims over lines": HEAD + "y = conv(4, kernel=3 x\n   {n})\n",
    "repetition": HEAD + "block b() { a = relu }\ny = b * {n}\n",
    "towers": HEAD + "towers {n} { a = relu }\n",
    "expect": HEAD + "y = relu expect 3 x {n} x 32\n",
    "train": HEAD + "y = relu\ntrain { batch = {n} }\n",
    "block default": HEAD + "block b(p={n}) { a = relu }\ny = b\n",
}


@pytest.mark.parametrize("digits", [HUGE, "1" + "0" * MAX_DIGITS], ids=["5000", "21"])
@pytest.mark.parametrize("template", NUMBER_PLACES.values(), ids=NUMBER_PLACES)
def test_a_number_with_too_many_digits_is_one_e006_at_the_number(template, digits):
    text = template.replace("{n}", digits)
    ((code, line, column, message, hint),) = errors(text)
    assert (code, line, column) == ("E006", *position(text, digits))
    assert f"is too large ({len(digits):,} digits)" in message
    assert hint == f"sizes and counts are at most {MAX_SIZE}"
    assert len(message) < 120  # the number itself is cut short


def test_leading_zeros_do_not_count_as_digits():
    assert errors(HEAD + f"y = conv({'0' * 5000}8, kernel=3)\n") == []


def test_twenty_digits_reach_the_size_checks():
    ((code, _, column, message, _),) = errors(HEAD + f"y = conv({'9' * MAX_DIGITS}, kernel=3)\n")
    assert (code, column) == ("E006", 10)
    assert message == f"`filters` of `conv` is too large ({'9' * MAX_DIGITS}); at most {MAX_SIZE}"


def test_arithmetic_stops_at_twenty_digits():
    text = HEAD + "y = conv(4, kernel=3, groups=10000000000 * 10000000000)\n"
    ((code, line, column, message, _),) = errors(text)
    assert (code, line, column) == ("E006", 3, 30)
    assert message == "this expression's value is too large (more than 20 digits)"


def test_arithmetic_inside_blocks_cannot_grow_numbers_without_bound():
    """Each block squares its parameter: past 20 digits it stops, without a huge int."""
    chain = "".join(f"block b{i}(p) {{ y = b{i + 1}(p * p) }}\n" for i in range(40))
    text = HEAD + chain + "block b40(p) { y = relu }\nz = b0(10)\n"
    ((code, _, _, message, _),) = errors(text)
    assert code == "E006" and "value is too large" in message


# ----------------------------------------------------------------------------- sizes


@pytest.mark.parametrize(
    "line, culprit",
    [
        ("input x: 3 x 99999999999 x 5", "99999999999"),
        ("input x: 2147483648", "2147483648"),
        ("y = conv(4, kernel=3, pad=99999999999)", "99999999999"),
        ("y = conv(4, kernel=3, pad=2147483648 x 1)", "2147483648 x 1"),
        ("y = relu expect 3 x 99999999999 x 32", "99999999999"),
        ("y = resize(2147483648 x 3)", "2147483648 x 3"),
        ("y = adaptive_avgpool(2147483648)", "2147483648"),
        ("y = conv(2147483648, kernel=3)", "2147483648"),
        ("y = lrn(size=2147483648)", "2147483648"),
        ("y = relu\ntrain { schedule = on_plateau(patience=2147483648) }", "2147483648"),
        ("y = relu\ntrain { schedule = on_plateau(max_drops=2147483648) }", "2147483648"),
        ("y = relu\ntrain { schedule = multistep(milestones=[5, 2147483648]) }", "2147483648"),
        ("y = relu\ntrain { epochs = 2147483648 }", "2147483648"),
    ],
)
def test_every_size_has_the_same_cap(line, culprit):
    head = "model T\n" if line.startswith("input") else HEAD
    text = head + line + ("\ny = flatten\n" if line.startswith("input") else "\n")
    ((code, at_line, at_column, message, hint),) = errors(text)
    assert (code, at_line, at_column) == ("E006", *position(text, culprit))
    assert str(MAX_SIZE) in message + hint


def test_the_cap_itself_is_a_valid_size():
    text = "model T\ninput x: 2147483647\ny = dense(10)\n"
    assert errors(text) == []
    assert errors(HEAD + "y = conv(4, kernel=3, pad=2147483647 x 0)\n") == []


def test_negative_pad_written_as_h_x_w_is_e006():
    text = HEAD + "y = conv(4, kernel=3, pad=-1 x 2)\n"
    assert errors(text) == [
        ("E006", 3, 27, "`pad` of `conv` must not be negative, got `-1 x 2`", "")
    ]


# ----------------------------------------------------------------------------- deep nesting


def negations(depth: int) -> str:
    return HEAD + f"y = dropout({'- ' * (depth - 1)}0.5)\n"


def nots(depth: int) -> str:
    return HEAD + f"y = conv(4, kernel=3, bias={'not ' * (depth - 1)}true)\n"


def lists(depth: int) -> str:
    return HEAD + f"y = relu\ntrain {{ augment = {'[' * (depth - 1)}hflip{']' * (depth - 1)} }}\n"


def calls(depth: int) -> str:
    return HEAD + f"y = conv(4, kernel=3, weight={'normal(' * (depth - 1)}1{')' * (depth - 1)})\n"


def sums(depth: int) -> str:
    return HEAD + f"y = conv({' + '.join(['1'] * depth)}, kernel=3)\n"


def conditionals(depth: int) -> str:
    return HEAD + f"y = conv({'1 if true else ' * (depth - 1)}1, kernel=3)\n"


NESTINGS = [negations, nots, lists, calls, sums, conditionals]
NESTED_TOO_DEEP = f"this expression is nested more than {MAX_DEPTH} levels deep"


@pytest.mark.parametrize("build", NESTINGS, ids=lambda f: f.__name__)
def test_nesting_up_to_the_limit_is_accepted(build):
    assert not any(NESTED_TOO_DEEP in e[3] for e in errors(build(MAX_DEPTH)))


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 5000])
@pytest.mark.parametrize("build", NESTINGS, ids=lambda f: f.__name__)
def test_nesting_past_the_limit_is_one_e006(build, depth):
    ((code, line, _, message, hint),) = errors(build(depth))
    assert (code, line, message) == ("E006", 3 if build is not lists else 4, NESTED_TOO_DEEP)
    assert "adds a level" in hint


def test_a_100000_term_sum_is_refused_at_its_start_quickly():
    text = HEAD + f"y = conv({'+'.join(['1'] * 100_000)}, kernel=3)\n"
    found, seconds = timed(text)
    assert [e[:4] for e in found] == [("E006", 3, 10, NESTED_TOO_DEEP)]
    assert seconds < 5


def test_parentheses_do_not_nest_values():
    assert errors(HEAD + f"y = conv({'(' * 5000}8{')' * 5000}, kernel=3)\n") == []


def block_chain(depth: int) -> str:
    """Blocks b0 .. b{depth-1}, each calling the next; the last one's statement is an op."""
    chain = "".join(f"block b{i}() {{ y = b{i + 1} }}\n" for i in range(depth - 1))
    return HEAD + chain + f"block b{depth - 1}() {{ y = relu }}\nz = b0\n"


def test_blocks_nest_up_to_fifty_levels():
    assert blocks.MAX_NESTING == 50
    assert errors(block_chain(50)) == []


@pytest.mark.parametrize("depth", [51, 5000])
def test_blocks_nested_deeper_are_one_e006_at_the_call_too_many(depth):
    ((code, line, column, message, hint),) = errors(block_chain(depth))
    assert (code, line, column) == ("E006", 52, 19)  # `b50` in block b49
    chain = "blocks call blocks more than 50 levels deep here (b0 -> b1 -> ... -> b50)"
    assert message == f"{chain} (in block `b49` called at t.arch:51:19)"  # as any error in a block
    assert hint


def call_at_depth(frames: int, function, *args):
    """`function(*args)` called `frames` Python frames deeper than here."""
    if frames == 0:
        return function(*args)
    return call_at_depth(frames - 1, function, *args)


def test_the_deepest_spec_allowed_leaves_room_on_the_stack():
    """Blocks nested 50 deep, each passing on an argument nested as deep as allowed, the last
    using values nested as deep as allowed: checked clean with the default recursion limit
    from a caller already 300 frames deep (it needs about 420 frames)."""
    deepest = MAX_DEPTH - 1
    argument = "- " * deepest + "1"
    chain = "".join(f"block a{i}(p) {{ x = a{i + 1}({argument}) }}\n" for i in range(49))
    last = (
        f"block a49(p) {{ x = conv(4, 3, bias={'not ' * deepest}true, "
        f"weight=normal({'1 + ' * (deepest - 1)}1, std=0.01)) |> dropout({'- ' * (deepest - 1)}0.5) }}\n"
    )
    text = HEAD + chain + last + "y = a0(1)\nfc = flatten |> dense(10)\n"
    assert sys.getrecursionlimit() == 1000
    checked = call_at_depth(300, check_source, text, "t.arch")
    assert checked.ok and checked.diagnostics == []


# ----------------------------------------------------------------------------- linear time


def test_a_20000_statement_chain_checks_in_linear_time():
    text = HEAD + "a0 = flatten\n" + "".join(f"a{i} = relu\n" for i in range(1, 20_000))
    found, seconds = timed(text)
    assert found == []
    assert seconds < 15, seconds  # about 1 s here; a quadratic step would take minutes


def test_10000_undefined_names_take_linear_time_and_short_hints():
    """A did-you-mean search scans every name: searching for each took 100 s here."""
    body = "".join(f"a{i} = relu from zz{i}\n" for i in range(1, 10_000))
    found, seconds = timed(HEAD + "a0 = flatten\n" + body)
    assert len(found) == 9_999 and {e[0] for e in found} == {"E010"}
    assert {e[4] for e in found} == {
        "define it with `input` or a statement, or correct the spelling"
    }
    assert seconds < 15, seconds


def test_a_close_name_is_still_suggested_among_many():
    body = "".join(f"layer{i} = relu\n" for i in range(1, 2000))
    found = errors(HEAD + "layer0 = flatten\n" + body + "y = relu from layer1999x\n")
    assert [(e[0], e[4]) for e in found] == [("E010", "did you mean `layer1999`?")]


def test_a_200000_op_pipeline_is_refused_quickly():
    text = HEAD + "y = flatten" + " |> relu" * 200_000 + "\n"
    found, seconds = timed(text)
    column = len("y = flatten") + len(" |> relu") * MAX_OPS_PER_STATEMENT - 3
    assert found == [
        (
            "E006",
            3,
            column,
            f"this statement has more than {MAX_OPS_PER_STATEMENT:,} ops",
            "split it into several statements, each reading the one before",
        )
    ]
    assert seconds < 5, seconds


def test_the_statement_limit_of_a_file(monkeypatch):
    monkeypatch.setattr(syntax, "MAX_STATEMENTS", 100)
    text = HEAD + "a0 = flatten\n" + "".join(f"a{i} = relu\n" for i in range(1, 200))
    assert [e[:4] for e in errors(text)] == [
        ("E006", 103, 1, "the spec has more than 100 statements")
    ]


def test_the_term_limit_of_a_file(monkeypatch):
    monkeypatch.setattr(syntax, "MAX_TERMS", 100)
    text = HEAD + "y = conv(4, kernel=3, pad=1)\n" * 40
    assert [e[:4] for e in errors(text)] == [
        ("E006", 26, 5, "the spec has more than 100 ops and values")
    ]


@pytest.mark.parametrize(
    "text",
    [
        HEAD + "y = relu\ntrain { augment = [" + ", ".join(["hflip"] * 300_000) + "] }\n",
        "model T\n" + "".join(f"input x{i}: 3\n" for i in range(300_000)),
        "model T\n" * 300_000,
        HEAD + "y = conv(4, kernel=" + " x ".join(["3"] * 300_000) + ")\n",
    ],
    ids=["list", "inputs", "models", "dims"],
)
def test_values_and_declarations_outside_statements_count_too(text):
    found, seconds = timed(text)
    assert [e[0] for e in found] == ["E006"]
    assert found[0][3] == f"the spec has more than {MAX_TERMS:,} ops and values"
    assert seconds < 5, seconds


def test_the_real_statement_limit_of_a_file_is_reached_quickly():
    text = HEAD + "a0 = flatten\n" + "".join(f"a{i} = relu\n" for i in range(1, 60_000))
    found, seconds = timed(text)
    assert [e[:4] for e in found] == [
        ("E006", 50_003, 1, f"the spec has more than {MAX_STATEMENTS:,} statements")
    ]
    assert seconds < 15, seconds


EXPANDS_TO = "blocks, `* N` and towers expand the spec to more than"


@pytest.mark.parametrize(
    "body, culprit, what",
    [
        (
            "block b() { a = relu }\n" + "".join(f"y{i} = b * 10000\n" for i in range(6)),
            ("y4 = b * 10000", 6),  # `start` and five times 10,000 statements
            f"{MAX_STATEMENTS:,} statements",
        ),
        (
            "block b() { a = dropout([" + ", ".join(["1"] * 1000) + "]) }\ny = b * 10000\n",
            ("y = b * 10000", 5),
            f"{MAX_TERMS:,} ops and values",
        ),
        (
            "".join(f"block b{i}() {{ y = b{i + 1} |> b{i + 1} }}\n" for i in range(40))
            + "block b40() { y = relu }\nz = b0\n",
            None,
            f"{MAX_TERMS:,} ops and values",  # each block call is one
        ),
        (
            "towers 64 {\n" + "".join(f"a{i} = relu\n" for i in range(800)) + "}\n",
            ("a781 = relu", 1),  # `start` and 782 times 64 statements
            f"{MAX_STATEMENTS:,} statements",
        ),
    ],
    ids=["repetition", "arguments", "doubling", "towers"],
)
def test_expansion_past_a_limit_is_one_e006_quickly(body, culprit, what):
    text = HEAD + "start = flatten\n" + body
    found, seconds = timed(text)
    ((code, line, column, message, hint),) = found
    # the limit is passed inside a block (named, as any error there) or at the top level
    assert code == "E006" and re.fullmatch(
        re.escape(f"{EXPANDS_TO} {what}") + r"( \(in block `\w+` .*\))?", message
    )
    if culprit is not None:
        fragment, at_column = culprit
        assert (line, column) == (position(text, fragment)[0], at_column)
    assert hint == "repeat less, or nest fewer block calls"
    assert seconds < 10, seconds


# ----------------------------------------------------------------------------- no statements


@pytest.mark.parametrize(
    "body", ["", "y = relu if false\n", "block b() { a = relu }\n"], ids=["none", "if", "block"]
)
def test_a_spec_without_statements_is_e017_at_its_input(body):
    assert errors(HEAD + body) == [
        (
            "E017",
            2,
            1,
            "the spec has no statements: nothing to compute",
            "add e.g. `fc = flatten |> dense(10)`",
        )
    ]


def test_a_broken_only_statement_is_its_own_error_only():
    assert [e[0] for e in errors(HEAD + "y = cnov(4, kernel=3)\n")] == ["E002"]


# ----------------------------------------------------------------------------- hostile edits

# the heavy zoo specs (tests/heavy_specs.py) add no construct and would slow each edit down
SOURCES = [p.read_text(encoding="utf-8") for p in SHIPPED_SPECS if not is_heavy(p)]
FRAGMENTS = [
    HUGE,
    "99999999999999999999",
    "2147483648",
    "3 x 99999999999 x 5",
    "1e999",
    "- " * 3000 + "1",
    "not " * 3000 + "true",
    "[" * 3000 + "]" * 3000,
    "normal(" * 3000 + ")" * 3000,
    "+".join(["1"] * 3000),
    "1 if true else " * 3000 + "1",
    "(" * 3000 + "1" + ")" * 3000,
    " |> relu" * 300,
    "block",
    "towers 64 {",
    "}",
    "* 10000",
    "expect",
    "if",
    "\n",
]


def hostile_edit(rng: random.Random, text: str) -> str:
    """Insert a hostile fragment, replace a number with one, duplicate or cut a stretch."""
    at = rng.randrange(len(text) + 1)
    kind = rng.randrange(4)
    if kind == 0:
        return text[:at] + " " + rng.choice(FRAGMENTS) + " " + text[at:]
    if kind == 1:
        digits = [i for i, c in enumerate(text) if c.isdigit()]
        i = rng.choice(digits) if digits else at
        return text[:i] + rng.choice(FRAGMENTS[:5]) + text[i + 1 :]
    if kind == 2:
        end = min(len(text), at + rng.randrange(1, 300))
        return text[:at] + text[at:end] * rng.randrange(2, 6) + text[at:]
    return text[:at] + text[at + rng.randrange(1, 40) :]


@pytest.mark.parametrize("seed", range(4))
def test_hostile_edits_of_the_shipped_specs_never_raise(seed):
    rng = random.Random(seed)
    for _ in range(40):
        text = rng.choice(SOURCES)
        for _ in range(rng.randrange(1, 4)):
            text = hostile_edit(rng, text)
        start = time.perf_counter()
        checked = check_source(text, "t.arch")
        assert time.perf_counter() - start < 5, text[:200]
        assert all(d.span is not None and d.message for d in checked.diagnostics)
        # no message formats more than the input holds (no product of huge numbers)
        assert all(len(d.message) < len(text) + 200 for d in checked.diagnostics), text[:200]


@pytest.mark.slow
def test_many_hostile_edits_never_raise():
    rng = random.Random(12345)
    for _ in range(5000):
        text = rng.choice(SOURCES)
        for _ in range(rng.randrange(1, 6)):
            text = hostile_edit(rng, text)
        checked = check_source(text, "t.arch")
        assert all(d.span is not None and d.message for d in checked.diagnostics)
