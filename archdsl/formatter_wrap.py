"""Values and pipelines laid out at a column: canonical spacing, and lines wrapped at WIDTH.

A rendered piece is a list of Lines: the first starts at the column it was asked for (its text
holds no indentation), the ones after carry their indentation. A line break the user wrote
between arguments, list items or pipeline elements is kept; others are added where a line
would pass WIDTH. A comment inside a value is written only at such a break: one anywhere else
stays unplaced, and the caller copies the whole item as written instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import pairwise

from lark import Token, Tree

from archdsl.formatter_source import Comment, Source, key, tokens_of

WIDTH = 100
_SPACED = {"conditional", "logical_or", "logical_and", "compare", "binary", "logical_not"}
_LISTS = {"list", "call_args"}  # bracketed items, filled line by line
_ARGUMENTS = ("arglist", "block_params")
_WRAPPABLE = {"call", "keyword_arg", "positional_arg", "element", "paren"} | _LISTS | _SPACED


@dataclass
class Line:
    """One output line and the comment at its end."""

    text: str
    comment: Comment | None = None


def dims_text(token: Token) -> str:
    """A `C x H x W` shape with one space around each `x`, its numbers as written."""
    return re.sub(r"\s*[xX]\s*", " x ", str(token))


def flat(node) -> str:
    """A value, element or clause on one line, with canonical spacing."""
    if isinstance(node, Token):
        return dims_text(node) if node.type == "DIMS" else str(node)
    kind, parts = node.data, node.children
    if kind in _SPACED:
        return " ".join(flat(p) for p in parts)
    if kind == "negate":
        operand = flat(parts[1])
        apart = operand[0] in "+-" or _is_dims(parts[1])  # `- 3 x 4` is not the shape `-3 x 4`
        return f"{parts[0]}{' ' if apart else ''}{operand}"
    if kind in ("list", "call_args", "block_params", "arglist"):
        return _bracketed_flat(parts)
    if kind == "block_param":
        return _block_param_flat(parts)
    if kind == "repetition":
        return f" * {flat(parts[1])}"
    return "".join(flat(p) for p in parts)


def _is_dims(node) -> bool:
    """True for a shape literal (`3 x 4`)."""
    return isinstance(node, Tree) and node.data == "dims_value"


def _bracketed_flat(parts) -> str:
    """Items separated by `, ` (a trailing comma dropped), inside their brackets if any."""
    text = ""
    for i, part in enumerate(parts):
        if isinstance(part, Token) and part == ",":
            if i + 1 < len(parts) and not _is_closer(parts[i + 1]):
                text += ", "
            continue
        text += flat(part)
    return text


def _is_closer(node) -> bool:
    """True for `)` or `]`."""
    return isinstance(node, Token) and node.type in ("RPAR", "RSQB")


def _block_param_flat(parts) -> str:
    """`name`, `name: type`, `name = default`, `name: type = default`."""
    marks = {":": ": ", "=": " = "}
    return "".join(marks.get(p, p) if isinstance(p, Token) else flat(p) for p in parts)


@dataclass
class _Unit:
    """One item of a sequence, and the separator token (`,` or `|>`) before it, if any."""

    node: object
    before: Token | None


def _units(parts, separator: str) -> list[_Unit]:
    """Split children into the items between separators."""
    units, before = [], None
    for part in parts:
        if isinstance(part, Token) and part == separator:
            before = part
        else:
            units.append(_Unit(part, before))
            before = None
    return units


class Layout:
    """Lays out the values of one source, placing the comments it can."""

    def __init__(self, source: Source):
        self.source = source
        self._breaks: dict[int, bool] = {}

    def value(self, node, col: int) -> list[Line]:
        """A value, argument or element starting at `col`, wrapped where needed."""
        if isinstance(node, Tree) and node.data == "positional_arg":
            return self.value(node.children[0], col)
        if isinstance(node, Tree) and node.data == "keyword_arg":
            head = flat(node.children[0]) + "="
            return _prefixed(head, self.value(node.children[2], col + len(head)))
        if isinstance(node, Tree) and node.data in ("call", "element"):
            return self._named(node, col)
        if isinstance(node, Tree) and node.data == "list":
            return self.sequence(node.children, col)
        if isinstance(node, Tree) and node.data in _SPACED and self.breaks(node):
            return self._operators(node, col)
        if isinstance(node, Tree) and node.data == "paren" and self.breaks(node):
            return self._parenthesised(node, col)
        return [Line(flat(node))]

    def _operators(self, node: Tree, col: int) -> list[Line]:
        """An operator expression broken before each operator where the user broke the line
        there, its continuation lines starting at `col`."""
        parts = node.children
        lines = self.value(parts[0], col)
        for index, part in enumerate(parts[1:], 1):
            if isinstance(part, Token) and _operator_break(parts, index):
                lines.append(Line(" " * col + str(part)))
            else:
                lines = _joined(lines, _prefixed(" ", self.value(part, _end(lines, col) + 1)))
        return lines

    def _parenthesised(self, node: Tree, col: int) -> list[Line]:
        """`(value)`, the value keeping its line breaks."""
        lines = _prefixed("(", self.value(node.children[1], col + 1))
        lines[-1].text += ")"
        return lines

    def _named(self, node: Tree, col: int) -> list[Line]:
        """`name(args)` or `name(args) * N`."""
        name, rest = str(node.children[0]), node.children[1:]
        tail = "".join(flat(p) for p in rest if p.data == "repetition")
        lines = [Line(name)]
        if rest and rest[0].data == "call_args":
            lines = _joined(lines, self.sequence(rest[0].children, col + len(name), tail))
        lines[-1].text += tail
        return lines

    def sequence(self, parts, col: int, tail: str = "") -> list[Line]:
        """Bracketed items (`(a, b)`, `[a, b]`) filled line by line, wrapping under the first;
        `tail` is what follows the closing bracket on its line."""
        opener, closer = str(parts[0]), str(parts[-1])
        units = _items(parts)
        if not units:
            return [Line(opener + closer)]
        return self._fill(units, opener, closer, col + len(opener), len(tail))

    def pipeline(self, node: Tree, col: int, cont: int) -> list[Line]:
        """Elements joined by `|>`, continuation lines starting with `|>` at column `cont`."""
        units = _units(node.children, "|>")
        lines = self.value(units[0].node, col)
        for previous, unit in pairwise(units):
            lines = self._next(lines, col, previous, unit, cont, "|> ", " |> ", "")
        return lines

    def _fill(self, units, opener, closer, inner, reserve) -> list[Line]:
        """The units after `opener` at column `inner`, separated by commas, then `closer` and
        room for `reserve` more characters."""
        lines = _prefixed(opener, self.value(units[0].node, inner))
        start = inner - len(opener)
        for index, (previous, unit) in enumerate(pairwise(units)):
            lines[-1].text += ","
            last = index == len(units) - 2
            suffix = closer + " " * reserve if last else ","
            lines = self._next(lines, start, previous, unit, inner, "", " ", suffix)
        lines[-1].text += closer
        return lines

    def _next(self, lines, start, previous, unit, cont, lead, gap, suffix) -> list[Line]:
        """Append `unit` on the current line if it fits and nothing forces a break, else on a new
        line at column `cont` (after the comments that come between)."""
        src, sep = self.source, unit.before
        after = src.take_trailing(tokens_of(previous.node)[-1]) or src.take_trailing(sep)
        leading = [*src.take_leading(sep), *src.take_leading(tokens_of(unit.node)[0])]
        text = flat(unit.node)
        fits = _end(lines, start) + len(gap) + len(text) + len(suffix) <= WIDTH
        if fits and not (after or leading or self._forced(previous, unit)):
            lines[-1].text += gap + text
            return lines
        lines[-1].comment = after
        lines += [Line(" " * cont + c.text) for c in leading]
        body = _prefixed(lead, self.value(unit.node, cont + len(lead)))
        body[0].text = " " * cont + body[0].text
        return lines + body

    def _forced(self, previous: _Unit, unit: _Unit) -> bool:
        """True when a line break must come before `unit`: the user wrote one, a comment comes
        between, or the unit itself keeps a break."""
        first, last = tokens_of(unit.node)[0], tokens_of(previous.node)[-1]
        src, sep = self.source, unit.before
        comments = [src.trailing.get(key(last)), src.leading.get(key(first))]
        if sep is not None:
            comments += [src.trailing.get(key(sep)), src.leading.get(key(sep))]
        return first.line > last.end_line or any(comments) or self.breaks(unit.node)

    def breaks(self, node) -> bool:
        """True when `node` keeps a line break inside: a user break or comment between items."""
        if not isinstance(node, Tree) or node.data not in _WRAPPABLE:
            return False
        if id(node) not in self._breaks:
            self._breaks[id(node)] = self._has_breaks(node)
        return self._breaks[id(node)]

    def _has_breaks(self, node: Tree) -> bool:
        """breaks() without the memo."""
        if node.data in _LISTS:
            units = _items(node.children)
            return any(self._forced(a, b) for a, b in pairwise(units)) or any(
                self.breaks(u.node) for u in units[:1]
            )
        if node.data in _SPACED:
            parts = node.children
            broken = any(
                _operator_break(parts, i)
                for i in range(1, len(parts))
                if isinstance(parts[i], Token)
            )
            return broken or any(self.breaks(child) for child in parts)
        return any(self.breaks(child) for child in node.children)


def _operator_break(parts, index: int) -> bool:
    """True when the user broke the line just before or just after the operator parts[index]."""
    operator, previous, following = parts[index], parts[index - 1], parts[index + 1]
    before = tokens_of(previous)[-1].end_line < operator.line
    return before or tokens_of(following)[0].line > operator.line


def _items(parts) -> list[_Unit]:
    """The comma-separated items between a pair of brackets (an arglist's, when it has one)."""
    inner = list(parts[1:-1])
    if len(inner) == 1 and isinstance(inner[0], Tree) and inner[0].data in _ARGUMENTS:
        inner = inner[0].children
    return _units(inner, ",")


def _prefixed(prefix: str, lines: list[Line]) -> list[Line]:
    """`lines` with `prefix` before the first."""
    lines[0].text = prefix + lines[0].text
    return lines


def _end(lines: list[Line], col: int) -> int:
    """The column after the last line of a piece that starts at `col`."""
    return (col if len(lines) == 1 else 0) + len(lines[-1].text)


def _joined(head: list[Line], tail: list[Line]) -> list[Line]:
    """Two pieces, the second continuing the last line of the first."""
    head[-1].text += tail[0].text
    head[-1].comment = tail[0].comment
    return head + tail[1:]
