"""Keras's model.py layout: expression trees (backends/pysource.py) over lines as ruff formats them.

A tree is flat when it fits its line; otherwise every bracket that does not fit is exploded one
item per line with a trailing comma, which ruff keeps as written (the "magic trailing comma").
The layout therefore passes `ruff format --check` at the default width and at any wider one.
"""

from __future__ import annotations

from archdsl.backends.pysource import INDENT, WIDTH, Call, Code, Pair, Seq, flat


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
