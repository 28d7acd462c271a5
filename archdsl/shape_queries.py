"""Shapes while blocks expand: what `in.channels` reads, inferred on demand, each statement once.

Blocks are expanded before shape inference runs, but a block that reads its input's shape
(`conv(in.channels // 4, kernel=1)`) needs that shape while its arguments are evaluated. The
statements above a call are lowered by then (or can be, for those of the call being expanded),
so their shapes follow from the same op rules that `shapes.infer` applies later: this module runs
those rules on the statements the query reaches, and remembers every shape it computes.
"""

from __future__ import annotations

from collections.abc import Callable

from archdsl import ir
from archdsl.binding import BindError, fail
from archdsl.diagnostics import error
from archdsl.ops import REGISTRY
from archdsl.ops.spec import Shape, ShapeError
from archdsl.shapes import _where


class UnknownShape(Exception):
    """A shape that cannot be known because of an error reported already: drop the statement
    that asked, without a second diagnostic."""


class ShapesSoFar:
    """The shapes of the inputs and of the statements lowered so far, computed on demand."""

    def __init__(self, inputs: dict[str, Shape], statement: Callable[[str], ir.Statement | None]):
        """`statement(name)` is the IR of a statement above (None: not defined there); it raises
        UnknownShape for one that failed to lower."""
        self.known = dict(inputs)
        self.failed: set[str] = set()
        self.statement = statement

    def shape(self, name: str, span) -> Shape:
        """The output shape of `name`, for the expression at `span` that reads it."""
        pending, visiting = [name], set()
        while pending:
            current = pending[-1]
            if current in self.failed:
                raise UnknownShape(current)
            if current in self.known:
                pending.pop()
                continue
            stmt = self._defined(current, name, span, self.statement(current))
            missing = [n for n in stmt.inputs if n not in self.known]
            if missing:
                visiting.add(current)
                cycle = next((n for n in missing if n in visiting), None)
                pending += [self._defined(cycle, name, span, None)] if cycle else missing
                continue
            pending.pop()
            self.known[current] = self._run(stmt)
        return self.known[name]

    def _defined(self, current: str, wanted: str, span, stmt: ir.Statement | None) -> ir.Statement:
        """`stmt`, the IR of `current`, which must be defined above the call (not None, not in
        a cycle) and outside towers."""
        if stmt is None:
            raise fail(
                "E010",
                span,
                f"the shape of `{wanted}` is not known here: `{current}` is not defined above "
                "this call",
                "a block reads the shape of its input only when the statements it depends on "
                "come before the call",
            )
        if stmt.towers > 1:
            raise fail(
                "E004",
                span,
                f"the shape of `{wanted}` is not known here: `{current}` runs in `towers`",
                "pass the width as an argument to this block",
            )
        return stmt

    def _run(self, stmt: ir.Statement) -> Shape:
        """Apply a statement's op rules to its inputs' shapes (errors as `shapes.infer` says them)."""
        shapes = [self.known[n] for n in stmt.inputs]
        for op in stmt.ops:
            try:
                shapes = [REGISTRY[op.op].shape(op, shapes).shape]
            except ShapeError as exc:
                self.failed.add(stmt.name)
                raise BindError(
                    error(exc.code, op.span, _where(stmt, exc.message), exc.hint)
                ) from None
        return shapes[0]
