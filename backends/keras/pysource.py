"""Python expressions as small trees, laid out the way `ruff format` leaves them (88 columns).

A tree is flat when it fits its line; otherwise every bracket that does not fit is exploded one
item per line with a trailing comma, which ruff keeps as written (the "magic trailing comma").
The layout therefore passes `ruff format --check` at the default width and at any wider one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

WIDTH = 88
INDENT = 4


@dataclass(frozen=True)
class Call:
    """`func(args)`; `func` may itself be a Call, as in `Layer(...)(x)`."""

    func: Code
    args: tuple[Code, ...] = ()


@dataclass(frozen=True)
class Seq:
    """A tuple, list or dict display; `brackets` is "()", "[]" or "{}"."""

    brackets: str
    items: tuple[Code, ...]


@dataclass(frozen=True)
class Pair:
    """`key=value` in a call, or `key: value` in a dict (sep=": ")."""

    key: str
    value: Code
    sep: str = "="


Code = str | Call | Seq | Pair


def num(x: float | int | bool | None) -> str:
    """A Python literal of a number, bool or None, as ruff format writes it."""
    if isinstance(x, float) and not math.isfinite(x):
        return f'float("{x}")'
    return repr(x).replace("e+", "e")


def string(s: str) -> str:
    """A string literal in the quotes ruff format picks: double, unless single escapes fewer."""
    quote = "'" if s.count('"') > s.count("'") else '"'
    body = "".join("\\" + c if c == quote else c if c in "'\"" else repr(c)[1:-1] for c in s)
    return quote + body + quote


def literal(value) -> Code:
    """Plain data (dicts, lists, tuples, strings, numbers) as a tree."""
    if isinstance(value, dict):
        return Seq("{}", tuple(Pair(string(k), literal(v), ": ") for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return Seq("[]", tuple(literal(v) for v in value))
    if isinstance(value, str):
        return string(value)
    return num(value)


def tup(values) -> Seq:
    """A tuple display of numbers."""
    return Seq("()", tuple(num(v) for v in values))


def flat(code: Code) -> str:
    """The tree on one line."""
    if isinstance(code, str):
        return code
    if isinstance(code, Pair):
        return code.key + code.sep + flat(code.value)
    if isinstance(code, Call):
        return f"{flat(code.func)}({', '.join(flat(a) for a in code.args)})"
    inner = ", ".join(flat(i) for i in code.items)
    if code.brackets == "()" and len(code.items) == 1:
        inner += ","
    return code.brackets[0] + inner + code.brackets[1]


def layout(code: Code, indent: int, lead: int, trail: int) -> str:
    """The tree starting at column `lead` of a line indented by `indent`, `trail` chars after it."""
    text = flat(code)
    if isinstance(code, str) or lead + len(text) + trail <= WIDTH:
        return text
    if isinstance(code, Pair):
        head = code.key + code.sep
        return head + layout(code.value, indent, lead + len(head), trail)
    if isinstance(code, Seq):
        return _exploded("", code.brackets, code.items, indent)
    if not code.args:
        return text
    if isinstance(code.func, Call):
        return _chained(code, indent, lead, trail)
    return _exploded(flat(code.func), "()", code.args, indent)


def _chained(code: Call, indent: int, lead: int, trail: int) -> str:
    """`f(a, b)(x)` too long: explode the first call, then the second if it still does not fit."""
    inner = code.func
    if inner.args:
        head = _exploded(flat(inner.func), "()", inner.args, indent)
        column = indent + len(head.rsplit("\n", 1)[-1])
    else:
        head = flat(inner)
        column = lead + len(head)
    return head + layout(Call("", code.args), indent, column, trail)


def _exploded(head: str, brackets: str, items: tuple[Code, ...], indent: int) -> str:
    """`head(` or `head[`, one item per line with a trailing comma, then the closing bracket."""
    inner = indent + INDENT
    lines = [head + brackets[0]]
    lines += [" " * inner + layout(item, inner, inner, 1) + "," for item in items]
    lines.append(" " * indent + brackets[1])
    return "\n".join(lines)


def statement(code: Code, indent: int = 0, prefix: str = "", comment: str = "") -> str:
    """One statement `prefix + code`, with an optional trailing comment, laid out."""
    tail = f"  # {comment}" if comment else ""
    lead = indent + len(prefix)
    if isinstance(code, str) and lead + len(code) + len(tail) > WIDTH >= indent + INDENT + len(
        code
    ):
        code = f"(\n{' ' * (indent + INDENT)}{code}\n{' ' * indent})"  # ruff's wrap of one atom
    return " " * indent + prefix + layout(code, indent, lead, len(tail)) + tail
