"""The names of a parsed spec: where each statement, input and block is defined and read."""

from __future__ import annotations

from dataclasses import dataclass, field

from archdsl.lsp.ranges import Place, inside
from archdsl.ops import MERGES, REGISTRY
from archdsl.syntax import BlockDef, InputDecl, Module, Pos, StatementNode, TowersBlock

DEFINITION, REFERENCE, INPUT, OP, CALL, BLOCK = (
    "definition",
    "reference",
    "input",
    "op",
    "call",
    "block",
)


@dataclass(frozen=True)
class Occurrence:
    """A name written in the spec: what it is, and the block whose body holds it (or None)."""

    kind: str
    name: str
    span: Pos
    scope: str | None = None


@dataclass
class Symbols:
    """Every occurrence of a name, and the definitions they lead to."""

    source: str
    occurrences: list[Occurrence] = field(default_factory=list)
    statements: dict[tuple[str | None, str], StatementNode] = field(default_factory=dict)
    inputs: dict[str, InputDecl] = field(default_factory=dict)
    blocks: dict[str, BlockDef] = field(default_factory=dict)

    def at(self, place: Place) -> Occurrence | None:
        """The occurrence under `place`, if any."""
        return next((o for o in self.occurrences if inside(place, o.span)), None)

    def definition(self, occurrence: Occurrence) -> Pos | None:
        """Where the statement, input or block that `occurrence` names is defined."""
        if occurrence.kind in (CALL, BLOCK):
            block = self.blocks.get(occurrence.name)
            return block.name_span if block else None
        stmt = self.statements.get((occurrence.scope, occurrence.name))
        if stmt is not None:
            return stmt.name_span
        found = self.inputs.get(occurrence.name) if occurrence.scope is None else None
        return found.name_span if found else None

    def block_signature(self, name: str) -> str:
        """`block NAME(params)` as written in its definition."""
        block = self.blocks[name]
        params = ", ".join(self.text(p.span) for p in block.params)
        return f"block {name}({params})"

    def text(self, span: Pos) -> str:
        """The source text of a one-line span (the start line only for a longer one)."""
        line = self.source.split("\n")[span.line - 1]
        end = span.end_column - 1 if span.end_line == span.line else len(line)
        return line[span.column - 1 : end]


def index(module: Module, source: str) -> Symbols:
    """The occurrences and definitions of a parsed module, in source order."""
    symbols = Symbols(source)
    for item in module.items:
        if isinstance(item, BlockDef):
            symbols.blocks.setdefault(item.name, item)
    for item in module.items:
        _item(symbols, item)
    return symbols


def _item(symbols: Symbols, item) -> None:
    """Index one top-level item."""
    if isinstance(item, StatementNode):
        _statement(symbols, item, None)
    elif isinstance(item, TowersBlock):
        for stmt in item.statements:
            _statement(symbols, stmt, None)
    elif isinstance(item, BlockDef):
        symbols.occurrences.append(Occurrence(BLOCK, item.name, item.name_span))
        for stmt in item.statements:
            _statement(symbols, stmt, item.name)
    elif isinstance(item, InputDecl):
        symbols.inputs.setdefault(item.name, item)
        symbols.occurrences.append(Occurrence(INPUT, item.name, item.name_span))


def _statement(symbols: Symbols, stmt: StatementNode, scope: str | None) -> None:
    """Index a statement: its name, the ops and blocks it applies, the names it reads."""
    symbols.statements.setdefault((scope, stmt.name), stmt)
    add = symbols.occurrences.append
    add(Occurrence(DEFINITION, stmt.name, stmt.name_span, scope))
    for element in stmt.elements:
        if element.name in symbols.blocks:
            add(Occurrence(CALL, element.name, element.name_span, scope))
        elif element.name in REGISTRY:
            add(Occurrence(OP, element.name, element.name_span, scope))
        if element.name in MERGES:
            for arg in element.args:
                if arg.key is None and arg.value.kind == "name":
                    add(Occurrence(REFERENCE, arg.value.value, arg.value.span, scope))
    if stmt.source is not None:
        add(Occurrence(REFERENCE, stmt.source[0], stmt.source[1], scope))
