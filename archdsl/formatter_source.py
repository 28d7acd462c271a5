"""The formatter's view of a spec: lark's full syntax tree (every token kept) and its comments,
each anchored to the token it trails or precedes."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import lru_cache

from lark import Lark, Token, Tree

from archdsl.syntax import grammar_parser, parse

_COLLECTED: list[Token] = []  # the comments of the parse in progress (one at a time: _LOCK)
_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _parser() -> Lark:
    """An LALR parser of the same grammar that keeps every token and hands comments over."""
    return grammar_parser(keep_all_tokens=True, lexer_callbacks={"COMMENT": _COLLECTED.append})


@dataclass
class Comment:
    """One `# ...` comment: its text, and whether a blank line comes before it."""

    text: str
    line: int
    blank_before: bool = False


@dataclass
class Source:
    """A parsed spec: its text, tree, tokens, and its comments by anchor token."""

    text: str
    tree: Tree
    trailing: dict[tuple[int, int], Comment] = field(default_factory=dict)
    leading: dict[tuple[int, int], list[Comment]] = field(default_factory=dict)
    blank_before: set[tuple[int, int]] = field(default_factory=set)
    at_end: list[Comment] = field(default_factory=list)
    placed: set[int] = field(default_factory=set)  # ids of the comments written out

    def take_trailing(self, token: Token) -> Comment | None:
        """The comment at the end of `token`'s line, marked as written."""
        comment = self.trailing.get(key(token))
        if comment is not None:
            self.placed.add(id(comment))
        return comment

    def take_leading(self, token: Token) -> list[Comment]:
        """The comments on their own lines before `token`, marked as written."""
        comments = self.leading.get(key(token), [])
        self.placed.update(id(c) for c in comments)
        return comments

    def unplaced(self, tokens: list[Token]) -> bool:
        """True when a comment anchored to one of `tokens` was not written."""
        for token in tokens:
            anchored = [*self.leading.get(key(token), []), self.trailing.get(key(token))]
            if any(c is not None and id(c) not in self.placed for c in anchored):
                return True
        return False

    def place_all(self, tokens: list[Token]) -> None:
        """Mark every comment anchored to `tokens` as written (they are copied verbatim)."""
        for token in tokens:
            self.take_leading(token)
            self.take_trailing(token)


def key(token: Token) -> tuple[int, int]:
    """A token's identity: where it starts."""
    return token.line, token.column


def tokens_of(node) -> list[Token]:
    """The tokens of a tree or token, in source order."""
    if isinstance(node, Token):
        return [node]
    return [t for child in node.children for t in tokens_of(child)]


def read(text: str, path: str) -> Source:
    """Parse `text` (raising the front end's SyntaxFailure) and anchor its comments."""
    parse(text, path)  # the front end's diagnostics and limits, exactly as `check` gives them
    with _LOCK:
        _COLLECTED.clear()
        tree = _parser().parse(text)
        comments = list(_COLLECTED)
    source = Source(text, tree)
    _anchor(source, tokens_of(tree), comments)
    return source


def _anchor(source: Source, tokens: list[Token], comments: list[Token]) -> None:
    """Attach each comment to the token it trails on its line, else to the next token."""
    events = sorted(
        [(t.line, t.column, 0, t) for t in tokens] + [(c.line, c.column, 1, c) for c in comments]
    )
    last_line, previous, pending = 0, None, []
    for line, _, is_comment, item in events:
        blank = last_line > 0 and line - last_line > 1
        if not is_comment:
            if blank:
                source.blank_before.add(key(item))
            if pending:
                source.leading[key(item)] = pending
                pending = []
            last_line, previous = item.end_line, item
            continue
        comment = Comment(str(item).rstrip(), line, blank)
        if previous is not None and previous.end_line == line and not pending:
            source.trailing[key(previous)] = comment
        else:
            pending.append(comment)
        last_line = line
    source.at_end = pending
