"""PyTorch's model.py layout: expression trees (backends/pysource.py) over lines as ruff formats them.

A tree stays on one line when it fits in 88 columns (ruff's default width). A call that does not
fit gets its arguments on one indented line, as ruff writes it, if they fit there; otherwise, as
a display that does not fit, one item per line with a trailing comma, which ruff keeps as written
(the "magic trailing comma").
"""

from __future__ import annotations

from archdsl.backends.pysource import INDENT, WIDTH, Call, Code, Pair, Plus, flat


def layout(code: Code, indent: int, column: int, trail: int) -> str:
    """The tree starting at `column` of a line indented by `indent`, with `trail` chars after it."""
    text = flat(code)
    if isinstance(code, str) or column + len(text) + trail <= WIDTH:
        return text
    if isinstance(code, Pair):
        head = code.key + code.sep
        return head + layout(code.value, indent, column + len(head), trail)
    if isinstance(code, Plus):
        return ("\n" + " " * indent + code.op + " ").join(code.terms)
    head, brackets, items = (
        (flat(code.func), "()", code.args)
        if isinstance(code, Call)
        else ("", code.brackets, code.items)
    )
    if not items:
        return text
    inner = indent + INDENT
    hugged = ", ".join(flat(item) for item in items)
    if isinstance(code, Call) and inner + len(hugged) <= WIDTH and indent + 1 + trail <= WIDTH:
        return f"{head}(\n{' ' * inner}{hugged}\n{' ' * indent})"
    lines = [head + brackets[0]]
    lines += [" " * inner + layout(item, inner, inner, 1) + "," for item in items]
    lines.append(" " * indent + brackets[1])
    return "\n".join(lines)


def statement(code: Code, indent: int, prefix: str = "", comment: str = "") -> str:
    """The line(s) of `prefix + code` at `indent`, with an optional trailing comment."""
    tail = f"  # {comment}" if comment else ""
    column = indent + len(prefix)
    if prefix and column + len(flat(code)) + len(tail) > WIDTH and _no_head(code, indent, column):
        inner = indent + INDENT
        body = layout(code, inner, inner, 0)
        return f"{' ' * indent}{prefix}(\n{' ' * inner}{body}\n{' ' * indent}){tail}"
    return " " * indent + prefix + layout(code, indent, column, len(tail)) + tail


def _no_head(code: Code, indent: int, column: int) -> bool:
    """Whether ruff wraps a right-hand side too long for its line in parentheses: a sum, a call
    whose `func(` overflows its line but not the wrapped one, or an atom that fits once wrapped."""
    if column + 1 > WIDTH:
        return False
    if isinstance(code, Plus):
        return True
    if isinstance(code, str) or isinstance(code, Call) and not code.args:
        return indent + INDENT + len(flat(code)) <= WIDTH
    if not isinstance(code, Call):
        return False
    opening = len(flat(code.func)) + 1
    return column + opening > WIDTH and indent + INDENT + opening <= WIDTH


def items_block(head: str, entries: list[tuple[Code, str]], indent: int) -> list[str]:
    """`head(` then one item per line, each with its own comment, then `)`."""
    inner = indent + INDENT
    lines = [" " * indent + head + "("]
    for code, comment in entries:
        tail = f",  # {comment}"
        lines.append(" " * inner + layout(code, inner, inner, len(tail)) + tail)
    lines.append(" " * indent + ")")
    return lines
