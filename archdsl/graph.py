"""Graph-level checks: duplicate and undefined names, cycles, unused statements, source order."""

from __future__ import annotations

from collections import deque

from archdsl import ir
from archdsl.diagnostics import Diagnostic, did_you_mean, error, warning

# Undefined names that get a did-you-mean hint: each search scans every defined name.
MAX_SEARCHES = 20
# More defined names than this are not listed in a hint when none is close to the undefined one.
MAX_LISTED = 12


def resolve(graph: ir.Graph) -> tuple[list[ir.Statement], list[Diagnostic]]:
    """Statements in an order where every input comes first, plus naming diagnostics."""
    diagnostics: list[Diagnostic] = []
    defined: dict[str, ir.Span] = {}
    for name, span in [(i.name, i.span) for i in graph.inputs] + [
        (s.name, s.span) for s in graph.statements
    ]:
        if name in defined:
            first = defined[name]
            diagnostics.append(
                error(
                    "E009",
                    span,
                    f"`{name}` is already defined on line {first.line}",
                    "rename one of them",
                )
            )
        else:
            defined[name] = span
    undefined = 0
    for stmt in graph.statements:
        for name, span in zip(stmt.inputs, _input_spans(stmt), strict=True):
            if name not in defined:
                hint = _undefined_hint(name, stmt.name, defined, undefined < MAX_SEARCHES)
                undefined += 1
                diagnostics.append(
                    error("E010", span, f"`{stmt.name}` reads `{name}`, which is not defined", hint)
                )
    if diagnostics:
        return [], diagnostics
    order, cycle = _topological(graph)
    if cycle:
        path = " -> ".join(s.name for s in cycle) + f" -> {cycle[0].name}"
        span = _closing_reference(graph, cycle)
        return [], [
            error(
                "E011",
                span,
                f"statements form a cycle: {path}",
                "a statement cannot (even indirectly) read its own output",
            )
        ]
    return order, _unused(graph)


def _undefined_hint(name: str, reader: str, defined: dict, search: bool) -> str:
    """A did-you-mean for an undefined name (when `search`), else how to define it."""
    if search:
        candidates = [n for n in defined if n != reader]
        hint = did_you_mean(name, candidates)
        if len(candidates) <= MAX_LISTED or hint.startswith("did you mean"):
            return hint
    return "define it with `input` or a statement, or correct the spelling"


def _input_spans(stmt: ir.Statement) -> tuple:
    """Where each input is named (the statement itself where it is implicit)."""
    return (
        stmt.input_spans
        if len(stmt.input_spans) == len(stmt.inputs)
        else (stmt.span,) * len(stmt.inputs)
    )


def _closing_reference(graph: ir.Graph, cycle: list[ir.Statement]):
    """The span of the reference that closes a cycle: one to a statement not yet defined."""
    position = {s.name: i for i, s in enumerate(graph.statements)}
    members = {s.name for s in cycle}
    for stmt in cycle:
        for name, span in zip(stmt.inputs, _input_spans(stmt), strict=True):
            if name in members and position[name] >= position[stmt.name]:
                return span
    return cycle[0].span


def _topological(graph: ir.Graph) -> tuple[list[ir.Statement], list[ir.Statement]]:
    """Kahn's algorithm in source order; returns (order, a cycle if one exists)."""
    by_name = {s.name: s for s in graph.statements}
    pending = {s.name: {n for n in s.inputs if n in by_name} for s in graph.statements}
    readers: dict[str, list[str]] = {name: [] for name in by_name}
    for s in graph.statements:
        for n in set(s.inputs):
            if n in by_name:
                readers[n].append(s.name)
    ready = deque(s.name for s in graph.statements if not pending[s.name])
    order: list[ir.Statement] = []
    while ready:
        name = ready.popleft()
        order.append(by_name[name])
        for reader in readers[name]:
            pending[reader].discard(name)
            if not pending[reader]:
                ready.append(reader)
    if len(order) == len(graph.statements):
        return order, []
    return order, _find_cycle(by_name, {n for n, p in pending.items() if p})


def _find_cycle(by_name: dict, stuck: set[str]) -> list[ir.Statement]:
    """Walk inputs among the stuck statements until a name repeats."""
    start = min(stuck, key=lambda n: by_name[n].span.line)
    path, seen = [start], {start: 0}
    while True:
        nxt = next(n for n in by_name[path[-1]].inputs if n in stuck)
        if nxt in seen:
            cycle = path[seen[nxt] :]
            return [by_name[n] for n in reversed(cycle)]
        seen[nxt] = len(path)
        path.append(nxt)


def _unused(graph: ir.Graph) -> list[Diagnostic]:
    """Statements and inputs whose values never reach the output."""
    by_name = {s.name: s for s in graph.statements}
    live, stack = set(), [graph.output]
    while stack:
        name = stack.pop()
        if name in live:
            continue
        live.add(name)
        if name in by_name:
            stack.extend(by_name[name].inputs)
    out = []
    for s in graph.statements:
        if s.name not in live:
            out.append(
                warning(
                    "W103",
                    s.span,
                    f"`{s.name}` is computed but never reaches the output `{graph.output}`"
                    + (f" ({s.via})" if s.via else ""),
                    "use it (e.g. in `concat`/`add` or with `from`) or delete it",
                )
            )
    for i in graph.inputs:
        if i.name not in live:
            out.append(
                warning("W103", i.span, f"input `{i.name}` is never read", "read it or delete it")
            )
    return out
