"""`towers N { }`: one statement per tower, joined by concatenation where towers exchange."""

from __future__ import annotations

from archdsl import ir
from archdsl.binding import fail

MERGE = "merge"


def tower_name(name: str, tower: int) -> str:
    """The IR name of one tower of a towered statement."""
    return f"{name}_t{tower}"


def expand_towers(statements: list[ir.Statement]) -> list[ir.Statement]:
    """Replicate towered statements per tower; join towers where un-towered code reads them."""
    towered = {s.name: s for s in statements if s.towers > 1}
    if not towered:
        return statements
    out: list[ir.Statement] = []
    joined: set[str] = set()
    for stmt in statements:
        if stmt.towers > 1:
            out += [_one_tower(stmt, t, towered) for t in range(stmt.towers)]
            continue
        for name in stmt.inputs:
            if name in towered and name not in joined:
                out.append(_join(towered[name]))
                joined.add(name)
        out.append(stmt)
    last = statements[-1]
    if last.towers > 1 and last.name not in joined:
        out.append(_join(last))
    return out


def _one_tower(stmt: ir.Statement, t: int, towered: dict[str, ir.Statement]) -> ir.Statement:
    """Tower `t` of a towered statement, reading the same tower of towered inputs."""
    merging = bool(stmt.ops) and isinstance(stmt.ops[0], ir.Concat) and len(stmt.inputs) == 1
    if merging:
        (source,) = stmt.inputs
        if source not in towered:
            raise fail("E004", stmt.ops[0].span, f"`merge`: `{source}` has no towers to merge")
        inputs = tuple(tower_name(source, i) for i in range(towered[source].towers))
        spans = stmt.input_spans[:1] * len(inputs)
    else:
        inputs = tuple(_same_tower(name, t, stmt, towered) for name in stmt.inputs)
        spans = stmt.input_spans
    update = {"name": tower_name(stmt.name, t), "inputs": inputs, "input_spans": spans, "tower": t}
    return stmt.model_copy(update=update)


def _same_tower(name: str, t: int, stmt: ir.Statement, towered: dict) -> str:
    """Inside towers, a towered input is read tower by tower; anything else whole."""
    if name not in towered:
        return name
    if towered[name].towers != stmt.towers:
        raise fail(
            "E013",
            stmt.span,
            f"`{stmt.name}` runs in {stmt.towers} towers but reads `{name}`, which has "
            f"{towered[name].towers}",
            f"start with `merge` to read all of `{name}`'s towers",
        )
    return tower_name(name, t)


def _join(stmt: ir.Statement) -> ir.Statement:
    """`NAME = concat(NAME_t0, NAME_t1, ...)`: the exchange point after a towers block."""
    inputs = tuple(tower_name(stmt.name, t) for t in range(stmt.towers))
    return ir.Statement(
        name=stmt.name, span=stmt.span, inputs=inputs, ops=(ir.Concat(span=stmt.span),)
    )
