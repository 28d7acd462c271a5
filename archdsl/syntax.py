"""Text to syntax tree: the lark grammar, a Transformer into small dataclasses, syntax errors."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from archdsl.diagnostics import Diagnostic, error

GRAMMAR = Path(__file__).with_name("grammar.lark")

READABLE = {
    "__ANON_0": "`|>`",
    "EXPECT": "`expect`",
    "NAME": "a name",
    "NUMBER": "a number",
    "DIMS": "a shape such as 3 x 227 x 227",
    "FROM_KW": "`from`",
    "TOWERS": "`towers`",
    "BLOCK": "`block`",
    "IF": "`if`",
    "ELSE": "`else`",
    "NOT": "`not`",
    "CMP": "a comparison",
    "ADDOP": "`+` or `-`",
    "$END": "the end of the file",
}


@dataclass(frozen=True, slots=True)
class Pos:
    """A cheap source span for syntax nodes; the IR validates it into `ir.Pos`."""

    file: str
    line: int
    column: int
    end_line: int
    end_column: int


@dataclass(frozen=True)
class Value:
    """A literal or call as written: kind is number, dims, name, call or list."""

    kind: str
    value: Any
    span: Pos
    args: tuple[Arg, ...] = ()


@dataclass(frozen=True)
class Arg:
    """One argument; `key` is None when it is positional."""

    key: str | None
    value: Value
    span: Pos


@dataclass(frozen=True)
class Element:
    """One op or block application in a pipeline: `name`, `name(args)`, `name(args) * N`."""

    name: str
    span: Pos
    name_span: Pos
    args: tuple[Arg, ...]
    repeat: tuple[int | float, Pos] | None = None


@dataclass(frozen=True)
class StatementNode:
    """`name = a |> b ... [from x] [expect C x H x W] [if condition]`."""

    name: str
    name_span: Pos
    span: Pos
    elements: tuple[Element, ...]
    source: tuple[str, Pos] | None
    expect: tuple[tuple[int, ...], Pos] | None
    condition: Value | None = None


@dataclass(frozen=True)
class ModelDecl:
    """`model NAME`."""

    name: str
    span: Pos
    name_span: Pos


@dataclass(frozen=True)
class InputDecl:
    """`input NAME: C x H x W`."""

    name: str
    span: Pos
    name_span: Pos
    dims: tuple[int, ...]
    dims_span: Pos
    dim_spans: tuple[Pos, ...] = ()


@dataclass(frozen=True)
class InitDecl:
    """`init [kind.]target = initialiser`."""

    target: tuple[str, ...]
    span: Pos
    target_span: Pos
    value: Value


@dataclass(frozen=True)
class Setting:
    """`key = value` inside `train { }`."""

    key: str
    span: Pos
    key_span: Pos
    value: Value


@dataclass(frozen=True)
class TrainBlock:
    """`train { settings }`."""

    settings: tuple[Setting, ...]
    span: Pos


@dataclass(frozen=True)
class TowersBlock:
    """`towers N { statements }`: each statement runs once per tower."""

    count: int | float
    count_span: Pos
    statements: tuple[StatementNode, ...]
    span: Pos


@dataclass(frozen=True)
class BlockParam:
    """`name[: type][= default]` in a block's signature."""

    name: str
    type: str | None
    default: Value | None
    span: Pos


@dataclass(frozen=True)
class BlockDef:
    """`block NAME(params) { statements }`: a parameterised fragment of graph."""

    name: str
    span: Pos
    name_span: Pos
    params: tuple[BlockParam, ...]
    statements: tuple[StatementNode, ...]


@dataclass(frozen=True)
class Module:
    """A parsed file: its top-level items in source order."""

    file: str
    items: tuple[Any, ...]


class SyntaxFailure(Exception):
    """Raised with the diagnostic of the first syntax error."""

    def __init__(self, diagnostic: Diagnostic):
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


@lru_cache(maxsize=1)
def _parser() -> Lark:
    """The LALR parser, running the transformer as it parses (no intermediate tree)."""
    return Lark(
        GRAMMAR.read_text(encoding="utf-8"),
        parser="lalr",
        maybe_placeholders=False,
        transformer=_ToNodes(),
    )


def _dims(text: str) -> tuple[int, ...]:
    """'3 x 227 x 227' -> (3, 227, 227)."""
    return tuple(int(p) for p in text.replace("X", "x").split("x"))


def _pos(item) -> Pos:
    """The span of a token, a node, or a tuple of them."""
    if isinstance(item, Token):
        return Pos(_FILE.name, item.line, item.column, item.end_line, item.end_column)
    if isinstance(item, Pos):
        return item
    if isinstance(item, tuple):
        return _around(item)
    return item.span


def _around(items) -> Pos:
    """From the start of the first item to the end of the last."""
    first, last = _pos(items[0]), _pos(items[-1])
    return Pos(first.file, first.line, first.column, last.end_line, last.end_column)


class _File:
    """The file being parsed, for the spans built while lark parses it (guarded by a lock)."""

    name = "<spec>"


_FILE = _File()


class _ToNodes(Transformer):
    """One small method per grammar rule, run while parsing, each keeping its source span."""

    def start(self, items):
        return Module(_FILE.name, tuple(items))

    def model_decl(self, c):
        return ModelDecl(str(c[1]), _around(c), _pos(c[1]))

    def input_decl(self, c):
        dims, dims_span, parts = c[2]
        return InputDecl(str(c[1]), _around((c[0], dims_span)), _pos(c[1]), dims, dims_span, parts)

    def init_decl(self, c):
        target, target_span = c[1]
        return InitDecl(target, _around((c[0], c[2])), target_span, c[2])

    def init_target(self, c):
        return tuple(str(t) for t in c), _around(c)

    def statement(self, c):
        name, pipeline, rest = c[0], c[1], c[2:]
        clauses = dict(rest)
        last = rest[-1][1] if rest else None
        end = pipeline if last is None else (last.span if isinstance(last, Value) else last[1])
        return StatementNode(
            str(name),
            _pos(name),
            _around((name, end)),
            pipeline,
            clauses.get("source"),
            clauses.get("expect"),
            clauses.get("condition"),
        )

    def condition(self, c):
        return ("condition", c[1])

    def repetition(self, c):
        return ("repeat", (_single_dim(str(c[1])), _around(c)))

    def block_def(self, c):
        params = c[3] if len(c) > 3 and isinstance(c[3], tuple) else ()
        body = tuple(x for x in c if isinstance(x, StatementNode))
        return BlockDef(str(c[1]), _around(c), _pos(c[1]), params, body)

    def block_params(self, c):
        return tuple(c)

    def block_param(self, c):
        kind = str(c[1]) if len(c) > 1 and isinstance(c[1], Token) else None
        default = c[-1] if isinstance(c[-1], Value) else None
        return BlockParam(str(c[0]), kind, default, _around(c))

    def conditional(self, c):
        return Value("conditional", (c[0], c[2], c[4]), _around((c[0], c[4])))

    def compare(self, c):
        return Value("compare", (str(c[1]), c[0], c[2]), _around((c[0], c[2])))

    def binary(self, c):
        return Value("binary", (str(c[1]), c[0], c[2]), _around((c[0], c[2])))

    def negate(self, c):
        return Value("negate", (str(c[0]), c[1]), _around(c))

    def logical_not(self, c):
        return Value("not", (c[1],), _around(c))

    def paren(self, c):
        return c[1]

    def source(self, c):
        return ("source", (str(c[1]), _pos(c[1])))

    def expectation(self, c):
        dims, dims_span, _ = c[1]
        return ("expect", (dims, _around((c[0], dims_span))))

    def pipeline(self, c):
        return tuple(c)

    def element(self, c):
        repeat = c[-1][1] if isinstance(c[-1], tuple) and c[-1][0] == "repeat" else None
        call = c[1] if len(c) > 1 and c[1] is not None and c[1][0] != "repeat" else None
        args = call[0] if call else ()
        end = repeat[1] if repeat else (call[1] if call else c[0])
        return Element(str(c[0]), _around((c[0], end)), _pos(c[0]), args, repeat)

    def call_args(self, c):
        return (c[1] if len(c) == 3 else ()), _around(c)

    def arglist(self, c):
        return tuple(c)

    def positional_arg(self, c):
        return Arg(None, c[0], c[0].span)

    def keyword_arg(self, c):
        key, value = c
        return Arg(str(key), value, _around((key, value)))

    def key(self, c):
        return c[0]

    def train_block(self, c):
        return TrainBlock(tuple(c[2:-1]), _around(c))

    def towers_block(self, c):
        count = _single_dim(str(c[1]))
        return TowersBlock(count, _pos(c[1]), tuple(c[3:-1]), _around(c))

    def setting(self, c):
        return Setting(str(c[0]), _around(c), _pos(c[0]), c[1])

    def number(self, c):
        text = str(c[0])
        is_int = not any(ch in text for ch in ".eE")
        return Value("number", int(text) if is_int else float(text), _pos(c[0]))

    def dims_value(self, c):
        return Value("dims", _dims(str(c[0])), _pos(c[0]))

    def name(self, c):
        return Value("name", str(c[0]), _pos(c[0]))

    def call(self, c):
        args, parens = c[1]
        return Value("call", str(c[0]), _around((c[0], parens)), args)

    def list(self, c):
        return Value("list", tuple(c[1:-1]), _around(c))

    def dims(self, c):
        tok = c[0]
        span = _pos(tok)
        if tok.type != "DIMS":
            return (_single_dim(str(tok)),), span, (span,)
        return _dims(str(tok)), span, _part_spans(str(tok), span)


_LOCK = threading.Lock()


def _part_spans(text: str, span: Pos) -> tuple[Pos, ...]:
    """The span of each number in a one-line `C x H x W` token."""
    if "\n" in text:
        return ()
    return tuple(
        Pos(span.file, span.line, span.column + m.start(), span.line, span.column + m.end())
        for m in re.finditer(r"-?[0-9]+", text)
    )


def _single_dim(text: str) -> int | float:
    """A single dimension written as a plain number (a non-integer is rejected later)."""
    return int(text) if text.lstrip("+-").isdigit() else float(text)


def parse(text: str, file: str) -> Module:
    """Parse source text into a Module, or raise SyntaxFailure."""
    with _LOCK:
        _FILE.name = file
        try:
            return _parser().parse(text)
        except UnexpectedInput as exc:
            raise SyntaxFailure(_syntax_diagnostic(exc, text, file)) from None


def _acceptable(exc: UnexpectedCharacters, text: str) -> set[str]:
    """What the parser accepts where the bad character is (replaying the text before it)."""
    try:
        replay = _parser().parse_interactive(text[: exc.pos_in_stream])
        replay.exhaust_lexer()
        return set(replay.accepts())
    except UnexpectedInput:
        return set(exc.allowed or ())


def _expected(names) -> str:
    """Readable list of the terminals the parser would have accepted."""
    lark = _parser()
    words = []
    for name in sorted(names):
        if name in READABLE:
            words.append(READABLE[name])
            continue
        try:
            words.append(f"`{lark.get_terminal(name).pattern.value}`")
        except KeyError:
            words.append(name)
    return ", ".join(sorted(set(words)))


def _syntax_diagnostic(exc: UnexpectedInput, text: str, file: str) -> Diagnostic:
    """Turn a lark exception into an E001 diagnostic with what was expected."""
    line, column = max(exc.line, 1), max(exc.column, 1)
    width = 1
    if isinstance(exc, UnexpectedToken):
        got = "end of file" if exc.token.type == "$END" else f"`{exc.token}`"
        width = max(1, len(str(exc.token))) if exc.token.type != "$END" else 1
        if exc.token.type == "$END":
            line, column = _end_position(text)
        expected = _expected(exc.accepts or exc.expected)
        message = f"unexpected {got}"
    elif isinstance(exc, UnexpectedCharacters):
        got = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else "?"
        message = f"unexpected character `{got}`"
        expected = _expected(_acceptable(exc, text))
    elif isinstance(exc, UnexpectedEOF):
        line, column = _end_position(text)
        message = "unexpected end of file"
        expected = _expected(exc.expected)
    else:
        message, expected = str(exc), ""
    span = Pos(file=file, line=line, column=column, end_line=line, end_column=column + width)
    hint = f"expected {expected}" if expected else ""
    return error("E001", span, f"syntax error: {message}", hint)


def _end_position(text: str) -> tuple[int, int]:
    """Line and column just past the last non-blank character (lines end at `\\n` only, as lark counts)."""
    lines = text.rstrip().split("\n") or [""]
    return len(lines), len(lines[-1]) + 1
