"""Hover texts (Markdown): a statement's shape and counts, an op's signature, a block's
parameters."""

from __future__ import annotations

import re

from archdsl import ir
from archdsl.lsp.analysis import Analysis
from archdsl.lsp.symbols import BLOCK, CALL, INPUT, OP, Occurrence
from archdsl.ops import REGISTRY
from archdsl.ops.spec import fmt
from archdsl.shapes import Layer, Report

NAME = re.compile(r"[^\W\d]\w*")
MAX_ROWS = 12  # op rows shown for one statement; a block call's hover says how many more


def hover_text(analysis: Analysis, occurrence: Occurrence) -> str | None:
    """The Markdown to show for `occurrence`, or None when there is nothing to say."""
    if occurrence.kind == OP:
        return op_text(occurrence.name)
    if occurrence.kind in (CALL, BLOCK):
        return _block_text(analysis, occurrence.name)
    report = analysis.checked.report
    if occurrence.kind == INPUT or _is_input(report, occurrence):
        return _input_text(report, occurrence.name)
    if occurrence.scope is not None:
        return _local_text(report, occurrence)
    return _statement_text(report, occurrence.name)


def op_text(name: str) -> str:
    """An op's signature and its one-line documentation."""
    return f"```arch\n{signature(name)}\n```\n\n{REGISTRY[name].doc}"


def op_under(line: str, column: int) -> str | None:
    """The op whose name the column is on, read from the line alone (for text that does not
    parse yet)."""
    for word in NAME.finditer(line):
        if word.start() <= column <= word.end():
            return word[0] if word[0] in REGISTRY else None
    return None


def signature(name: str) -> str:
    """`conv(filters: count, kernel: pair, stride?: pair, ...)`; `concat(NAME, NAME, ...)`."""
    spec = REGISTRY[name]
    params = [f"{p.name}{'' if p.required else '?'}: {p.kind}" for p in spec.params]
    if spec.merge:
        params = ["NAME", "NAME", "...", *params]
    return f"{name}({', '.join(params)})" if params else name


def _block_text(analysis: Analysis, name: str) -> str | None:
    """A block's signature as written, and how many statements its body has."""
    symbols = analysis.symbols
    if symbols is None or name not in symbols.blocks:
        return None
    count = len(symbols.blocks[name].statements)
    return f"```arch\n{symbols.block_signature(name)}\n```\n\n{count} statements in its body"


def _is_input(report: Report | None, occurrence: Occurrence) -> bool:
    """Whether a top-level name reads a network input."""
    inputs = report.graph.inputs if report else ()
    return occurrence.scope is None and any(i.name == occurrence.name for i in inputs)


def _input_text(report: Report | None, name: str) -> str | None:
    """An input's shape."""
    found = [i for i in report.graph.inputs if i.name == name] if report else []
    if not found:
        return None
    inp = found[0]
    shape = f"{inp.shape[0]} tokens of {inp.vocab}" if inp.vocab else fmt(inp.shape)
    return f"**{name}**: input `{shape}`"


def _statement_text(report: Report | None, name: str) -> str:
    """A top-level statement's output shape, parameters, MACs and ops."""
    if report is None:
        return f"**{name}**: no shapes while the spec has errors"
    members = [s.name for s in report.graph.statements if belongs(s.name, name)]
    if not members or members[-1] not in report.outputs:
        return f"**{name}**: no shape (an error above or in it stops shape inference)"
    last = name if name in report.outputs else members[-1]
    layers = [layer for layer in report.layers if belongs(layer.statement, name)]
    named = "" if last == name else f" (`{last}`)"
    head = f"**{name}** → `{fmt(report.outputs[last])}`{named}"
    return "\n\n".join([head, _counts(layers), _table(layers, len(members) > 1)])


def belongs(statement: str, name: str) -> bool:
    """Whether a lowered statement comes from the top-level statement `name` (a block call's
    `name.0.conv1`, a tower's `name_t1`)."""
    return (
        statement == name
        or statement.startswith(f"{name}.")
        or re.fullmatch(rf"{re.escape(name)}_t\d+", statement) is not None
    )


def _counts(layers: list[Layer]) -> str:
    """Parameters and MACs of some layers, as `archdsl shapes` counts them."""
    params = sum(layer.params for layer in layers)
    macs = sum(layer.macs for layer in layers)
    return f"{params:,} params · {macs:,} MACs"


def _table(layers: list[Layer], qualified: bool) -> str:
    """A Markdown table of layers (full names when the statement expands to several)."""
    rows = ["| op | output | params | MACs |", "|---|---|---:|---:|"]
    for layer in layers[:MAX_ROWS]:
        op = layer.name if qualified else layer.op
        rows.append(f"| {op} | {fmt(layer.output_shape)} | {layer.params:,} | {layer.macs:,} |")
    if len(layers) > MAX_ROWS:
        rows.append(f"\n{len(layers) - MAX_ROWS} more layers: see `archdsl shapes`")
    return "\n".join(rows)


def _local_text(report: Report | None, occurrence: Occurrence) -> str | None:
    """A block body's statement: its shape and counts in each call of the block."""
    if occurrence.name == "in":
        return None
    head = f"**{occurrence.name}** in block `{occurrence.scope}`"
    copies = _copies(report, occurrence) if report else []
    if not copies:
        return f"{head}: no shapes (no call of the block is checked)"
    groups = report.by_statement()
    lines = [
        f"- `{s.name}` → `{fmt(report.outputs[s.name])}`, {_counts(groups.get(s.name, []))}"
        for s in copies[:MAX_ROWS]
        if s.name in report.outputs
    ]
    more = [f"- {len(copies) - MAX_ROWS} more calls"] if len(copies) > MAX_ROWS else []
    return "\n".join([f"{head}, per call:", "", *lines, *more])


def _copies(report: Report, occurrence: Occurrence) -> list[ir.Statement]:
    """The statements that calls of the block made of a statement of its body."""
    via = f"in block `{occurrence.scope}`"
    return [
        s
        for s in report.graph.statements
        if s.name.endswith(f".{occurrence.name}") and (s.via or "").startswith(via)
    ]
