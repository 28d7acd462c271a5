"""Where the cursor stands, read from the text before it (which need not parse yet).

A small scanner follows brackets and statements: inside which call's parentheses the cursor is
and whether an argument's `key=` is written, whether it follows `|>` or a statement's `=`
(an op goes there), `from`, a `train` setting or an `init`, and which statement names are
defined above it in the same scope.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

TOKEN = re.compile(r"#[^\n]*|\|>|==|!=|<=|>=|[^\W\d]\w*|[0-9][\w.]*|\S")
WORD = re.compile(r"[^\W\d]\w*$")

OP, ARGUMENT, VALUE, SOURCE, SETTING, SETTING_VALUE, INIT_TARGET, INIT_VALUE = (
    "op",
    "argument",
    "value",
    "source",
    "setting",
    "setting_value",
    "init_target",
    "init_value",
)
TRAIN, BLOCK, TOWERS = "train", "block", "towers"


@dataclass
class Opener:
    """An open bracket: `(` of a call to `owner`, `[`, or the `{` of a train, block or towers
    body; `key` is the argument being written in a call (`stride` after `stride=`)."""

    char: str
    owner: str | None = None
    key: str | None = None


@dataclass
class Context:
    """What may be written at the cursor."""

    kind: str | None = None  # one of the constants above, or None: nothing to offer
    call: str | None = None  # the op, block, initialiser or recipe item whose `(` it is in
    key: str | None = None  # the argument whose value is being written
    setting: str | None = None  # the train setting whose value is being written
    area: str | None = None  # TRAIN, BLOCK or TOWERS: the `{ }` it is in, None at the top
    names: list[str] = field(default_factory=list)  # statements (and inputs) defined above
    current: str | None = None  # the statement being written


@dataclass
class _Scan:
    """The state of the scanner after each token."""

    stack: list[Opener] = field(default_factory=list)
    top: list[str] = field(default_factory=list)  # inputs and top-level statements
    local: list[str] = field(default_factory=list)  # the block body's statements
    current: str | None = None
    init: bool = False  # in an `init` declaration, before its `=`
    setting: str | None = None

    def brace(self) -> Opener | None:
        """The innermost open `{`."""
        return next((o for o in reversed(self.stack) if o.char == "{"), None)

    def at_statement_level(self) -> bool:
        """Whether no `(` or `[` is open inside the innermost `{` (or at the top)."""
        return not self.stack or self.stack[-1].char == "{"


def tokens(text: str) -> list[str]:
    """The tokens of `text`, comments dropped."""
    return [t for t in TOKEN.findall(text) if not t.startswith("#")]


def context_at(text: str, offset: int) -> Context:
    """The context of the cursor at `offset` in `text`."""
    before = text[:offset]
    partial = WORD.search(before)
    if partial:
        before = before[: partial.start()]
    words = tokens(before)
    scan = _Scan()
    for i, word in enumerate(words):
        _step(scan, words, i, word)
    return _context(scan, words)


def _step(scan: _Scan, words: list[str], i: int, word: str) -> None:
    """Follow one token."""
    previous = words[i - 1] if i else ""
    if word in "([{":
        scan.stack.append(Opener(word, _owner(words, i)))
    elif word in ")]}" and scan.stack:
        closed = scan.stack.pop()
        if closed.char == "{" and closed.owner == BLOCK:
            scan.local = []
    elif word == "=" and not scan.at_statement_level():
        scan.stack[-1].key = previous
    elif word == "," and not scan.at_statement_level():
        scan.stack[-1].key = None
    elif word == "=" and _names(previous):
        _assignment(scan, words, i)
    elif word == "init" and scan.at_statement_level():
        scan.init = True
    elif word == ":" and i >= 2 and words[i - 2] == "input":
        scan.top.append(previous)


def _assignment(scan: _Scan, words: list[str], i: int) -> None:
    """A statement-level `NAME =`: a statement, a train setting, or the end of an init target."""
    name, area = words[i - 1], _area(scan)
    if scan.init:
        scan.init = False
    elif area == TRAIN:
        scan.setting = name
    else:
        (scan.local if area == BLOCK else scan.top).append(name)
        scan.current = name


def _owner(words: list[str], i: int) -> str | None:
    """What an opening bracket belongs to: the called name, or the kind of `{ }` body."""
    if words[i] == "(":
        declared = i >= 2 and words[i - 2] == BLOCK  # `block NAME(`: parameters, not arguments
        return words[i - 1] if i and _names(words[i - 1]) and not declared else None
    if words[i] != "{":
        return None
    if i and words[i - 1] == TRAIN:
        return TRAIN
    if i >= 2 and words[i - 2] == TOWERS:
        return TOWERS
    opening = _matching_open(words, i - 1)
    return BLOCK if opening >= 2 and words[opening - 2] == BLOCK else None


def _matching_open(words: list[str], close: int) -> int:
    """The index of the `(` that the `)` at `close` closes (-1 when there is none)."""
    depth = 0
    for j in range(close, -1, -1):
        depth += {")": 1, "(": -1}.get(words[j], 0)
        if depth == 0:
            return j if words[j] == "(" else -1
    return -1


def _names(word: str) -> bool:
    """Whether a token is a name."""
    return bool(WORD.fullmatch(word))


def _area(scan: _Scan) -> str | None:
    """The kind of `{ }` the scanner is in (None at the top level)."""
    brace = scan.brace()
    return brace.owner if brace else None


def _context(scan: _Scan, words: list[str]) -> Context:
    """The context after the last token."""
    last = words[-1] if words else ""
    area = _area(scan)
    names = ["in", *scan.local] if area == BLOCK else list(scan.top)
    found = Context(area=area, names=names, current=scan.current)
    if not scan.at_statement_level():
        return _in_brackets(found, scan.stack[-1], scan, last)
    if last == "|>":
        found.kind = OP
    elif last == "from":
        found.kind = SOURCE
    elif last == "init":
        found.kind = INIT_TARGET
    elif last == "=" and len(words) >= 3 and (words[-3] == "init" or words[-3] == "."):
        found.kind = INIT_VALUE
    elif last == "=":
        found.kind, found.setting = (SETTING_VALUE, scan.setting) if area == TRAIN else (OP, None)
    elif area == TRAIN:
        found.kind = SETTING
    return found


def _in_brackets(found: Context, opener: Opener, scan: _Scan, last: str) -> Context:
    """The context inside a call's parentheses or a list."""
    found.setting = scan.setting if found.area == TRAIN else None
    if opener.char == "[":
        listed = len(scan.stack) >= 2 and scan.stack[-2].owner == TRAIN  # `augment = [...]`
        found.kind = SETTING_VALUE if last in ("[", ",") and listed else None
        return found
    found.call = opener.owner
    if last in ("(", ","):
        found.kind = ARGUMENT
    elif last == "=":
        found.kind, found.key = VALUE, opener.key
    return found
