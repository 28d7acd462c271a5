"""Text to syntax tree: the lark grammar, a Transformer into small dataclasses, syntax errors."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken
from lark.lexer import TerminalDef

from archdsl.diagnostics import Diagnostic, error

GRAMMAR = Path(__file__).with_name("grammar.lark")

# Limits that keep the front end bounded in time, memory and recursion on any input; going past
# one is an E006 at the place where it happens.
MAX_SIZE = 2**31 - 1  # a size or count: what every framework can index with 32 bits
MAX_DIGITS = 20  # a whole number longer than this is no size, count or index (int() stops at 4,300)
MAX_DEPTH = 100  # levels of operators, lists and calls in one expression (evaluation recurses)
MAX_OPS_PER_STATEMENT = 10_000
MAX_STATEMENTS = 50_000  # statements, counted again for every block call and tower
MAX_TERMS = 100_000  # ops, values and declarations; ops and values again for each block call, tower

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
    "AND": "`and`",
    "OR": "`or`",
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
    """A literal or call as written: kind is number, dims, name, call, list, attribute
    (`in.channels`), an operator, or after evaluation "tensor" (a block input whose shape
    an attribute reads).

    `depth` and `size` (levels and nodes) describe the expression as written, before evaluation.
    """

    kind: str
    value: Any
    span: Pos
    args: tuple[Arg, ...] = ()
    depth: int = field(default=1, compare=False)
    size: int = field(default=1, compare=False)


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
    repeat: tuple[int | float | str, Pos] | None = None  # a name: `a * b`, refused

    @property
    def size(self) -> int:
        """The op and its argument values: what expanding it costs."""
        return 1 + sum(a.value.size for a in self.args)


@dataclass(frozen=True)
class StatementNode:
    """`name = a |> b ... [from x] [expect C x H x W] [if condition]`."""

    name: str
    name_span: Pos
    span: Pos
    elements: tuple[Element, ...]
    source: tuple[str, Pos] | None
    expect: tuple[tuple[int, ...], Pos, tuple[Pos, ...]] | None  # sizes, clause, each size
    condition: Value | None = None
    size: int = field(default=0, compare=False)  # its ops and values, for MAX_TERMS


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
    vocab: int | float | None = None  # `tokens L of V`: integer ids below V
    words: tuple[tuple[str, Pos], ...] = ()  # the words around L and V, as written


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

    @property
    def size(self) -> int:
        """What one call costs: its statements' ops and values, its parameters and defaults."""
        body = sum(s.size for s in self.statements)
        return body + sum(1 + (p.default.size if p.default else 0) for p in self.params)


@dataclass(frozen=True)
class Module:
    """A parsed file: its top-level items in source order."""

    file: str
    items: tuple[Any, ...]


class SyntaxFailure(Exception):
    """Raised with the diagnostic of the first syntax error, or of the first limit passed."""

    def __init__(self, diagnostic: Diagnostic):
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


def grammar_parser(**options) -> Lark:
    """An LALR parser of the spec grammar; `options` are the caller's own lark options."""
    return Lark(
        GRAMMAR.read_text(encoding="utf-8"), parser="lalr", maybe_placeholders=False, **options
    )


@lru_cache(maxsize=1)
def _parser() -> Lark:
    """The LALR parser, running the transformer as it parses (no intermediate tree)."""
    return grammar_parser(transformer=_ToNodes())


def terminals() -> list[TerminalDef]:
    """The grammar's terminals: its keywords, symbols and the patterns of names and numbers."""
    return _parser().terminals


def _pos(item) -> Pos:
    """The span of a token, a node, or a tuple of them."""
    if isinstance(item, Token):
        return Pos(_PARSING.file, item.line, item.column, item.end_line, item.end_column)
    if isinstance(item, Pos):
        return item
    if isinstance(item, tuple):
        return _around(item)
    return item.span


def _around(items) -> Pos:
    """From the start of the first item to the end of the last."""
    first, last = _pos(items[0]), _pos(items[-1])
    return Pos(first.file, first.line, first.column, last.end_line, last.end_column)


class _Parsing:
    """The parse in progress: its file, for spans, and the counts the limits apply to.

    One parse runs at a time (guarded by a lock), so the transformer can share this state.
    """

    def __init__(self):
        self.start("<spec>")

    def start(self, file: str) -> None:
        """Begin parsing `file` with every count at zero."""
        self.file = file
        self.ops = 0  # in the statement being parsed
        self.statements = 0
        self.terms = 0

    def add_op(self, element: Element) -> None:
        """Count one op of the statement being parsed."""
        self.ops += 1
        if self.ops > MAX_OPS_PER_STATEMENT:
            raise _limit(
                element.span,
                f"this statement has more than {MAX_OPS_PER_STATEMENT:,} ops",
                "split it into several statements, each reading the one before",
            )
        self.add_terms(1, element.span)

    def add_statement(self, node: StatementNode) -> None:
        """Count one statement (its ops and values are counted as they are parsed)."""
        self.ops = 0
        self.statements += 1
        self._check(node.span)

    def add_terms(self, count: int, span: Pos) -> None:
        """Count ops, values or declarations: everything parsed is one term or more."""
        self.terms += count
        self._check(span)

    def _check(self, span: Pos) -> None:
        """Stop parsing at the place where the spec goes past MAX_STATEMENTS or MAX_TERMS."""
        passed = passed_limit(self.statements, self.terms)
        if passed:
            raise _limit(
                span,
                f"the spec has more than {passed}",
                "far more than any network needs: is this the file you meant to check?",
            )


_PARSING = _Parsing()


def passed_limit(statements: int, terms: int) -> str:
    """The spec-wide limit that these counts go past ('50,000 statements'), or ''."""
    if statements > MAX_STATEMENTS:
        return f"{MAX_STATEMENTS:,} statements"
    if terms > MAX_TERMS:
        return f"{MAX_TERMS:,} ops and values"
    return ""


def _limit(span: Pos, message: str, hint: str = "") -> SyntaxFailure:
    """The E006 for input that goes past one of the front end's limits."""
    return SyntaxFailure(error("E006", span, message, hint))


def _expression(kind: str, value, span: Pos, parts, args=()) -> Value:
    """An operator, list or call node over `parts`, unless it nests deeper than MAX_DEPTH."""
    depth = 1 + max((p.depth for p in parts), default=0)
    if depth > MAX_DEPTH:
        raise _limit(
            span,
            f"this expression is nested more than {MAX_DEPTH} levels deep",
            "each operator, `not`, list or call adds a level (`1 + 1 + ...` one per `+`); "
            "simplify it",
        )
    _PARSING.add_terms(1, span)
    return Value(kind, value, span, args, depth, 1 + sum(p.size for p in parts))


def _counted(node):
    """A parsed declaration or atom, counted as one term."""
    _PARSING.add_terms(1, node.span)
    return node


def _whole(text: str, span: Pos) -> int:
    """A whole number as written, unless it has more than MAX_DIGITS digits (zeros in front of
    it do not count)."""
    digits = text.lstrip("-").lstrip("0") or "0"
    if len(digits) > MAX_DIGITS:
        raise _limit(
            span,
            f"the number {_shown(text)} is too large ({len(digits):,} digits)",
            f"sizes and counts are at most {MAX_SIZE}",
        )
    return -int(digits) if text.startswith("-") else int(digits)


def _single_dim(token: Token) -> int | float:
    """A single dimension written as a plain number (a non-integer is rejected later)."""
    text = str(token)
    return _whole(text, _pos(token)) if text.isdigit() else float(text)


def _dims(token: Token) -> tuple[tuple[int, ...], tuple[Pos, ...]]:
    """A `C x H x W` token's sizes, and where each is written (the token may span lines)."""
    text, span = str(token), _pos(token)
    _PARSING.add_terms(text.count("x") + text.count("X") + 1, span)
    line, line_start = span.line, -(span.column - 1)  # offset of column 1 of `line`
    sizes, spans, scanned = [], [], 0
    for m in re.finditer(r"-?[0-9]+", text):
        breaks = text.count("\n", scanned, m.start())
        if breaks:
            line += breaks
            line_start = text.rindex("\n", scanned, m.start()) + 1
        scanned = m.start()
        column = m.start() - line_start + 1
        spans.append(Pos(span.file, line, column, line, column + len(m[0])))
        sizes.append(_whole(m[0], spans[-1]))
    return tuple(sizes), tuple(spans)


def _shown(text: str, width: int = 40) -> str:
    """Source text quoted in a message, cut short when it is long."""
    return f"`{text}`" if len(text) <= width else f"`{text[: width - 4]}...`"


class _ToNodes(Transformer):
    """One small method per grammar rule, run while parsing, each keeping its source span."""

    def start(self, items):
        return Module(_PARSING.file, tuple(items))

    def model_decl(self, c):
        return _counted(ModelDecl(str(c[1]), _around(c), _pos(c[1])))

    def input_decl(self, c):
        dims, dims_span, parts = c[2]
        span = _around((c[0], dims_span))
        return _counted(InputDecl(str(c[1]), span, _pos(c[1]), dims, dims_span, parts))

    def token_input_decl(self, c):
        """`input NAME: tokens L of V`: the words are checked by lowering."""
        _PARSING.add_terms(2, _around((c[3], c[5])))
        words = tuple((str(t), _pos(t)) for t in (c[2], c[4]))
        length, vocab = _single_dim(c[3]), _single_dim(c[5])
        spans = (_pos(c[3]), _pos(c[5]))
        name, span = str(c[1]), _around(c)
        return _counted(InputDecl(name, span, _pos(c[1]), (length,), spans[0], spans, vocab, words))

    def init_decl(self, c):
        target, target_span = c[1]
        return _counted(InitDecl(target, _around((c[0], c[2])), target_span, c[2]))

    def init_target(self, c):
        return tuple(str(t) for t in c), _around(c)

    def statement(self, c):
        name, pipeline, rest = c[0], c[1], c[2:]
        clauses = dict(rest)
        last = rest[-1][1] if rest else None
        end = pipeline if last is None else (last.span if isinstance(last, Value) else last[1])
        condition = clauses.get("condition")
        node = StatementNode(
            str(name),
            _pos(name),
            _around((name, end)),
            pipeline,
            clauses.get("source"),
            clauses.get("expect"),
            condition,
            sum(e.size for e in pipeline) + (condition.size if condition else 0),
        )
        _PARSING.add_statement(node)
        return node

    def condition(self, c):
        return ("condition", c[1])

    def repetition(self, c):
        count = str(c[1]) if c[1].type == "NAME" else _single_dim(c[1])
        return ("repeat", (count, _around(c)))

    def block_def(self, c):
        params = c[3] if len(c) > 3 and isinstance(c[3], tuple) else ()
        body = tuple(x for x in c if isinstance(x, StatementNode))
        return _counted(BlockDef(str(c[1]), _around(c), _pos(c[1]), params, body))

    def block_params(self, c):
        return tuple(c)

    def block_param(self, c):
        kind = str(c[1]) if len(c) > 1 and isinstance(c[1], Token) else None
        default = c[-1] if isinstance(c[-1], Value) else None
        return _counted(BlockParam(str(c[0]), kind, default, _around(c)))

    def conditional(self, c):
        parts = (c[0], c[2], c[4])
        return _expression("conditional", parts, _around((c[0], c[4])), parts)

    def compare(self, c):
        return _expression("compare", (str(c[1]), c[0], c[2]), _around((c[0], c[2])), (c[0], c[2]))

    def binary(self, c):
        return _expression("binary", (str(c[1]), c[0], c[2]), _around((c[0], c[2])), (c[0], c[2]))

    def negate(self, c):
        return _expression("negate", (str(c[0]), c[1]), _around(c), (c[1],))

    def logical_not(self, c):
        return _expression("not", (c[1],), _around(c), (c[1],))

    def logical_and(self, c):
        return _expression("and", (c[0], c[2]), _around((c[0], c[2])), (c[0], c[2]))

    def logical_or(self, c):
        return _expression("or", (c[0], c[2]), _around((c[0], c[2])), (c[0], c[2]))

    def paren(self, c):
        return c[1]

    def source(self, c):
        return ("source", (str(c[1]), _pos(c[1])))

    def expectation(self, c):
        dims, dims_span, parts = c[1]
        return ("expect", (dims, _around((c[0], dims_span)), parts))

    def pipeline(self, c):
        return tuple(c)

    def element(self, c):
        repeat = c[-1][1] if isinstance(c[-1], tuple) and c[-1][0] == "repeat" else None
        call = c[1] if len(c) > 1 and c[1] is not None and c[1][0] != "repeat" else None
        args = call[0] if call else ()
        end = repeat[1] if repeat else (call[1] if call else c[0])
        element = Element(str(c[0]), _around((c[0], end)), _pos(c[0]), args, repeat)
        _PARSING.add_op(element)
        return element

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
        return _counted(TrainBlock(tuple(c[2:-1]), _around(c)))

    def towers_block(self, c):
        count = _single_dim(c[1])
        return _counted(TowersBlock(count, _pos(c[1]), tuple(c[3:-1]), _around(c)))

    def setting(self, c):
        return _counted(Setting(str(c[0]), _around(c), _pos(c[0]), c[1]))

    def number(self, c):
        text = str(c[0])
        is_int = not any(ch in text for ch in ".eE")
        value = _whole(text, _pos(c[0])) if is_int else float(text)
        return _counted(Value("number", value, _pos(c[0])))

    def dims_value(self, c):
        return Value("dims", _dims(c[0])[0], _pos(c[0]))

    def name(self, c):
        return _counted(Value("name", str(c[0]), _pos(c[0])))

    def attribute(self, c):
        return _counted(Value("attribute", (str(c[0]), str(c[1])), _around(c)))

    def call(self, c):
        args, parens = c[1]
        span = _around((c[0], parens))
        return _expression("call", str(c[0]), span, [a.value for a in args], args)

    def list(self, c):
        items = tuple(c[1:-1])
        return _expression("list", items, _around(c), items)

    def dims(self, c):
        tok = c[0]
        span = _pos(tok)
        if tok.type != "DIMS":
            _PARSING.add_terms(1, span)
            return (_single_dim(tok),), span, (span,)
        sizes, parts = _dims(tok)
        return sizes, span, parts


_LOCK = threading.Lock()


def parse(text: str, file: str) -> Module:
    """Parse source text into a Module, or raise SyntaxFailure."""
    with _LOCK:
        _PARSING.start(file)
        try:
            return _parser().parse(text)
        except UnexpectedInput as exc:
            raise SyntaxFailure(_syntax_diagnostic(exc, text, file)) from None


def _acceptable(exc: UnexpectedCharacters, text: str) -> set[str]:
    """What the parser accepts where the bad character is (replaying the text before it)."""
    _PARSING.start(_PARSING.file)
    try:
        replay = _parser().parse_interactive(text[: exc.pos_in_stream])
        replay.exhaust_lexer()
        return set(replay.accepts())
    except (UnexpectedInput, SyntaxFailure):
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
        got = "end of file" if exc.token.type == "$END" else _shown(str(exc.token))
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
