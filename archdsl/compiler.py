"""The front end as one pure function: source text -> graph, shape report, diagnostics."""

from __future__ import annotations

import gc
from dataclasses import dataclass, field

from archdsl import ir
from archdsl.diagnostics import Diagnostic, has_errors, sort_key
from archdsl.lowering import lower
from archdsl.shapes import Report, infer
from archdsl.syntax import Module, SyntaxFailure, parse


@dataclass
class Checked:
    """Everything the front end learned about one spec."""

    source: str
    file: str
    module: Module | None = None  # the parsed spec; None where it does not parse
    graph: ir.Graph | None = None
    report: Report | None = None
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when there is a graph and no error."""
        return (
            self.graph is not None and self.report is not None and not has_errors(self.diagnostics)
        )


def check_source(source: str, file: str) -> Checked:
    """Parse, lower and infer shapes; never raises on bad input."""
    paused = gc.isenabled()
    gc.disable()  # the front end builds many small acyclic objects: collecting is pure cost
    try:
        return _check(source, file)
    finally:
        if paused:
            gc.enable()


def _check(source: str, file: str) -> Checked:
    """check_source without the garbage-collector pause."""
    source = source.removeprefix("\ufeff")  # a byte-order mark is not part of the spec
    result = Checked(source, file)
    try:
        module = parse(source, file)
    except SyntaxFailure as exc:
        result.diagnostics = [exc.diagnostic]
        return result
    result.module = module
    graph, diagnostics = lower(module)
    result.diagnostics = list(diagnostics)
    if graph is not None:
        result.graph = graph
        result.report = infer(graph)
        result.diagnostics += result.report.diagnostics
    result.diagnostics.sort(key=sort_key)
    return result
