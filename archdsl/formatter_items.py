"""Declarations, statements and blocks laid out in runs: in a run of consecutive statements,
settings or inits (no blank line between) the `=` signs line up, and so do each of the
`from`, `expect` and `if` clauses and the comments at the ends of the lines."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from lark import Token, Tree

from archdsl.formatter_source import Comment, Source, key, tokens_of
from archdsl.formatter_wrap import Layout, Line, flat

INDENT = "  "
_ALIGNED = ("statement", "init_decl", "setting")
_CLAUSES = ("source", "expectation", "condition")


@dataclass
class _Item:
    """An item laid out: its lines (indented), its clauses to align, its end-of-line comment."""

    lines: list[Line]
    clauses: dict[str, tuple[str, bool]] = field(default_factory=dict)  # text, on its own line
    comment: Comment | None = None
    body_column: int = 0


class Writer:
    """Writes the items of a source, block by block."""

    def __init__(self, source: Source):
        self.source = source
        self.layout = Layout(source)

    def container(self, items: list[Tree], closer: Token | None, indent: str) -> list[str]:
        """The items of the file or of a `{ }` body, then the comments before its end."""
        out: list[str] = []
        for run in self._runs(items):
            leading = [self.source.take_leading(tokens_of(item)[0]) for item in run]
            width = _head_width(run)
            laid = [self._item_with_fallback(item, indent, width) for item in run]
            _align_clauses(laid)
            _align_comments(laid)
            for item, comments, done in zip(run, leading, laid, strict=True):
                self._comments(out, comments, indent)
                if out and out[-1] and key(tokens_of(item)[0]) in self.source.blank_before:
                    out.append("")
                out += [_text(line) for line in done.lines]
        ending = self.source.take_leading(closer) if closer is not None else self.source.at_end
        self._comments(out, ending, indent)
        return out

    def _runs(self, items: list[Tree]) -> list[list[Tree]]:
        """Consecutive items of one aligned kind with no blank line between them."""
        runs: list[list[Tree]] = []
        for item in items:
            joins = runs and item.data in _ALIGNED and runs[-1][-1].data == item.data
            if joins and not self._blank_before(item):
                runs[-1].append(item)
            else:
                runs.append([item])
        return runs

    def _blank_before(self, item: Tree) -> bool:
        """True when a blank line comes before the item or any comment before it."""
        first = tokens_of(item)[0]
        comments = self.source.leading.get(key(first), [])
        return key(first) in self.source.blank_before or any(c.blank_before for c in comments)

    def _comments(self, out: list[str], comments: list[Comment], indent: str) -> None:
        """Comments on their own lines, keeping (at most) one blank line before each."""
        for comment in comments:
            if out and out[-1] and comment.blank_before:
                out.append("")
            out.append(indent + comment.text)

    def _item_with_fallback(self, item: Tree, indent: str, width: int) -> _Item:
        """The item laid out, or copied as written when a comment inside it has no place."""
        tokens = tokens_of(item)
        laid = self._item(item, indent, width)
        laid.comment = self.source.take_trailing(tokens[-1])
        if not self.source.unplaced(tokens):
            return laid
        self.source.place_all(tokens)
        first, *rest = self._verbatim(tokens)
        return _Item([Line(indent + first), *map(Line, rest)], {}, laid.comment)

    def _verbatim(self, tokens: list[Token]) -> list[str]:
        """The item's lines as written (trailing spaces and extra blank lines dropped); the lines
        after the first keep their own indentation."""
        text = self.source.text[tokens[0].start_pos : tokens[-1].end_pos]
        text = re.sub(r"\n(\s*\n)+", "\n\n", text)
        return [line.rstrip() for line in text.split("\n")]

    def _item(self, item: Tree, indent: str, width: int) -> _Item:
        """One item at `indent`; `width` is the run's width of names before `=`."""
        kind, parts = item.data, item.children
        if kind == "statement":
            return self._statement(parts, indent, width)
        if kind == "init_decl":
            return self._assignment(f"init {flat(parts[1])}", parts[3], indent, width)
        if kind == "setting":
            return self._assignment(str(parts[0]), parts[2], indent, width)
        if kind in ("block_def", "train_block", "towers_block"):
            return _Item(self._block(parts, indent))
        return _Item([Line(indent + _declaration(item))])

    def _assignment(self, head: str, value, indent: str, width: int) -> _Item:
        """`head = value`, `=` at the run's column."""
        prefix = f"{indent}{head:<{max(width, len(head))}} = "
        lines = self.layout.value(value, len(prefix))
        lines[0].text = prefix + lines[0].text
        return _Item(lines)

    def _statement(self, parts, indent: str, width: int) -> _Item:
        """`name = pipeline` and its clauses, which the run aligns."""
        name, pipeline = str(parts[0]), parts[2]
        prefix = f"{indent}{name:<{width}} = "
        lines = self.layout.pipeline(pipeline, len(prefix), len(prefix) - 2)
        lines[0].text = prefix + lines[0].text
        ends = [tokens_of(p)[-1].end_line for p in parts[2:-1]]
        clauses = {c.data: _clause(c, end) for c, end in zip(parts[3:], ends, strict=True)}
        return _Item(lines, clauses, body_column=len(prefix))

    def _block(self, parts, indent: str) -> list[Line]:
        """`block name(params) {`, `train {` or `towers N {`, its body, `}`."""
        brace = next(i for i, p in enumerate(parts) if isinstance(p, Token) and p.type == "LBRACE")
        header = self._header(parts[:brace], indent)
        header[-1].text += " {"
        header[-1].comment = self.source.take_trailing(parts[brace])
        body = self.container(list(parts[brace + 1 : -1]), parts[-1], indent + INDENT)
        return [*header, *(Line(text) for text in body), Line(indent + "}")]

    def _header(self, parts, indent: str) -> list[Line]:
        """What comes before a block's `{`."""
        if len(parts) < 3:  # train, towers N
            return [Line(indent + " ".join(str(p) for p in parts))]
        head = f"{indent}block {parts[1]}"
        lines = self.layout.sequence(parts[2:], len(head))
        lines[0].text = head + lines[0].text
        return lines


def _head_width(run: list[Tree]) -> int:
    """The width of the widest name before `=` in a run."""
    return max(len(_head(item)) for item in run)


def _head(item: Tree) -> str:
    """What comes before an aligned item's `=`."""
    if item.data == "init_decl":
        return f"init {flat(item.children[1])}"
    return str(item.children[0]) if item.data in _ALIGNED else ""


def _clause(clause: Tree, previous_line: int) -> tuple[str, bool]:
    """`from x`, `expect C x H x W` or `if condition`, spaced canonically, and whether the user
    started it on a line of its own (after the line where the text before it ends)."""
    own_line = clause.children[0].line > previous_line
    return f"{clause.children[0]} {flat(clause.children[1])}", own_line


def _declaration(item: Tree) -> str:
    """`model NAME`, `input NAME: C x H x W`, `input NAME: tokens L of V`."""
    parts = item.children
    if item.data == "model_decl":
        return f"model {parts[1]}"
    rest = parts[3:]
    if item.data == "input_decl":
        return f"input {parts[1]}: {flat(rest[0])}"
    return f"input {parts[1]}: " + " ".join(str(p) for p in rest)


def _align_clauses(laid: list[_Item]) -> None:
    """Put each kind of clause in one column across the run, after the longest line that it
    follows; a clause the user started on a line of its own stays on one."""
    for kind in _CLAUSES:
        having = [item for item in laid if kind in item.clauses]
        inline = [len(item.lines[-1].text) + 1 for item in having if not item.clauses[kind][1]]
        column = max(inline or [item.body_column for item in having] or [0])
        for item in having:
            text, own_line = item.clauses[kind]
            if own_line:
                item.lines.append(Line(""))
            item.lines[-1].text = item.lines[-1].text.ljust(column) + text


def _align_comments(laid: list[_Item]) -> None:
    """Start the end-of-line comments of a run's items in one column."""
    having = [item for item in laid if item.comment is not None]
    if not having:
        return
    column = max(len(item.lines[-1].text) for item in having) + 2
    for item in having:
        item.lines[-1].comment = item.comment
        item.lines[-1].text = item.lines[-1].text.ljust(column - 2)


def _text(line: Line) -> str:
    """A line with its comment, two spaces after the code."""
    return f"{line.text}  {line.comment.text}" if line.comment else line.text
