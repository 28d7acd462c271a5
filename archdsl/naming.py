"""Predictable names for the ops of a statement, shared by reports and every backend."""

from __future__ import annotations

from archdsl import ir


def op_labels(statement: ir.Statement) -> list[str]:
    """One label per op: the op's name, with `_2`, `_3`... on repeats (`conv`, `relu`, `conv_2`)."""
    seen: dict[str, int] = {}
    labels = []
    for op in statement.ops:
        seen[op.op] = seen.get(op.op, 0) + 1
        labels.append(op.op if seen[op.op] == 1 else f"{op.op}_{seen[op.op]}")
    return labels
