"""Blocks as generated code may run them: one class per block, whose calls differ only in which
of its statements exist, as conditions decide that Python computes as archdsl does (pyexpr.py).

A block qualifies when every condition in its body translates; its calls then carry the values
their conditions read (a parameter, `index`, `position`, `positions`, `in.channels`...).
"""

from __future__ import annotations

from archdsl import ir
from archdsl.binding import BindError
from archdsl.blocks import BLOCK_INPUT, CallRecord
from archdsl.expressions import SHAPE_ATTRIBUTES, shape_size
from archdsl.ops import MERGES
from archdsl.pyexpr import python_condition
from archdsl.syntax import BlockDef, StatementNode, Value

MIXED = "mixed"  # a name whose calls give it values of different kinds: no translation reads it


def block_forms(
    blocks: dict[str, BlockDef], records: list[CallRecord], aliases: dict[str, str]
) -> tuple[tuple[ir.Block, ...], tuple[ir.BlockCall, ...]]:
    """The blocks whose calls can all run as one class, and those calls in expansion order;
    `aliases` maps a block-call statement read by name (`from feat1`) to its last statement, as
    the lowered statements read it."""
    by_block: dict[str, list[CallRecord]] = {}
    for record in records:
        by_block.setdefault(record.block, []).append(record)
    forms, calls = [], {}
    for name, recorded in by_block.items():
        form = _form(blocks[name], _kinds(recorded), set(blocks))
        values = [_values(form.reads, r.env) for r in recorded] if form else [None]
        if form is None or any(v is None for v in values):
            continue
        forms.append(form)
        for record, found in zip(recorded, values, strict=True):
            calls[record.path] = ir.BlockCall(
                path=record.path,
                block=name,
                source=aliases.get(record.source, record.source),
                present=record.present,
                values=found,
            )
    ordered = tuple(calls[r.path] for r in records if r.path in calls)
    return tuple(forms), ordered


def _kinds(recorded: list[CallRecord]) -> dict[str, str]:
    """The kind of every name the calls' bodies could read (MIXED where calls disagree)."""
    kinds: dict[str, str] = {f"{BLOCK_INPUT}.{a}": "number" for a in SHAPE_ATTRIBUTES}
    for record in recorded:
        for name, value in record.env.items():
            if name == BLOCK_INPUT:
                continue
            kind = _kind(value)
            kinds[name] = kind if kinds.get(name, kind) == kind else MIXED
    return kinds


def _kind(v: Value) -> str:
    """What a bound value is, as pyexpr names kinds."""
    if v.kind == "name":
        return "bool" if v.value in ("true", "false") else "name"
    return {"number": "number", "dims": "size"}.get(v.kind, MIXED)


def _form(block: BlockDef, kinds: dict[str, str], known: set[str]) -> ir.Block | None:
    """The block's statements with their conditions in Python, or None where one does not
    translate (or the body does what a class cannot: a towers `merge`)."""
    statements, reads = [], []
    for node in block.statements:
        if any(e.name == "merge" for e in node.elements):
            return None
        condition = None
        if node.condition is not None:
            condition = python_condition(node.condition, kinds)
            if condition is None:
                return None
            reads += condition.reads
        statements.append(
            ir.BlockStatement(
                name=node.name,
                reads=_reads(node),
                condition=condition.source if condition else None,
                calls=any(e.name in known for e in node.elements),
            )
        )
    reads = tuple(dict.fromkeys(reads))
    return ir.Block(name=block.name, statements=tuple(statements), reads=reads)


def _reads(node: StatementNode) -> tuple[str, ...]:
    """The names a statement reads: its `from`, or a leading merge's inputs; () for the running
    value (the statement before it, or `in`)."""
    if node.source:
        return (node.source[0],)
    first = node.elements[0] if node.elements else None
    if first is not None and first.name in MERGES:
        return tuple(a.value.value for a in first.args)
    return ()


def _values(reads: tuple[str, ...], env: dict) -> tuple | None:
    """(name, value) for each name a call's conditions read, or None where one has no value."""
    out = []
    for name in reads:
        if name.startswith(BLOCK_INPUT + "."):
            tensor = env[BLOCK_INPUT]
            try:
                shape = tensor.value.shape(tensor.span)
            except BindError:
                return None
            size = shape_size(shape, name.split(".")[1])
            if size is None:
                return None
            out.append((name, size))
            continue
        v = env.get(name)
        if v is None or _kind(v) == MIXED:
            return None
        if v.kind == "name":
            out.append((name, v.value == "true" if _kind(v) == "bool" else v.value))
        else:
            out.append((name, tuple(v.value) if v.kind == "dims" else v.value))
    return tuple(out)
