"""Which blocks the generated code runs as one unit (a PyTorch class, a Keras builder function),
and the body that unit runs; shared by both emitters.

A unit runs the block's statements in order: each reads the statement before it (or what it
names), one with a condition runs under `if` with the condition in Python over the values the
call was made with (the front end's block_forms.py), and one that calls blocks runs those calls.
A block runs as a unit when every call of it can: each of its statements reaches the output, and
the calls agree statement by statement on how the backend computes it (`facts`); a model with
towers runs every call statement by statement.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from archdsl.backends.pysource import INDENT, Code, Pair, literal, tup, variable_names

from archdsl import ir
from archdsl.pyexpr import fill

BODY = 4  # indentation of a function body (a method's body is indented once more)


@dataclass(frozen=True)
class Plan:
    """Which blocks run as units, under which names, their calls, the names by which each unit
    receives the values its conditions read, and the top-level statements called as one."""

    units: dict[str, str]  # block -> class or function name
    calls: dict[str, ir.BlockCall]  # path -> call, for the calls of those blocks
    arguments: dict[str, dict[str, str]]  # block -> {name its conditions read: argument}
    groups: dict[str, tuple[str, str]]  # top-level statement -> (its input, its output)


def plan(
    graph: ir.Graph,
    facts: dict[str, tuple],
    naming: Callable[[str], str],
    taken: set[str],
    reserved: set[str],
    excluded: set[str],
) -> Plan:
    """The plan for a graph: `facts` describes each statement the model builds (by name) as
    the calls of one block must agree on it; `naming` turns a block's name into its unit's,
    kept clear of `taken`; the names of condition values avoid `reserved` and the block's
    statements; the blocks in `excluded` run statement by statement."""
    forms = {b.name: b for b in graph.blocks}
    calls = {c.path: c for c in graph.calls}
    names = {s.name for s in graph.statements}
    runnable: dict[str, bool] = {}

    def call_ok(call: ir.BlockCall) -> bool:
        """Whether one call's statements are all built, and nest as its block says."""
        for index in call.present:
            stmt = forms[call.block].statements[index]
            path = f"{call.path}.{stmt.name}"
            if stmt.calls:
                inner = calls_under(path, calls, names)
                if not inner or not all(block_ok(calls[p].block) for p in inner):
                    return False
            elif path not in facts:
                return False
        return True

    def block_ok(block: str) -> bool:
        """Whether every call of `block` runs as one unit."""
        if block not in runnable:
            runnable[block] = False  # a block never calls itself: this only ends a cycle
            if block in excluded:
                return False
            mine = [c for c in calls.values() if c.block == block]
            runnable[block] = all(call_ok(c) for c in mine) and _agree(forms[block], mine, facts)
        return runnable[block]

    kept = [b for b in forms if block_ok(b)]
    units = _unit_names(kept, naming, taken)
    arguments = {
        b: variable_names(forms[b].reads, reserved | {s.name for s in forms[b].statements})
        for b in kept
    }
    classed = {p: c for p, c in calls.items() if c.block in units}
    groups = {}
    for top in dict.fromkeys(s.name.split(".")[0] for s in graph.statements if "." in s.name):
        inner = calls_under(top, classed, names)
        members = [s.name for s in graph.statements if s.name.startswith(top + ".")]
        if inner and all(m in facts for m in members) and graph.output not in members:
            groups[top] = (classed[inner[0]].source, members[-1])
    return Plan(units, classed, arguments, groups)


def calls_under(path: str, calls: dict, names: set[str]) -> list[str]:
    """The calls a statement at `path` makes (`path` itself, or `path.0`, `path.1`...), or []
    where one of its statements is not a call's."""
    if path in calls:
        return [path]
    found, k = [], 0
    while f"{path}.{k}" in calls:
        found.append(f"{path}.{k}")
        k += 1
    if not found or any(n.startswith(f"{path}.{k}.") for n in names):
        return []
    return found


def _agree(form: ir.Block, calls: list[ir.BlockCall], facts: dict) -> bool:
    """Whether the calls agree, statement by statement, on the facts of its code."""
    seen: dict[int, tuple] = {}
    for call in calls:
        for index in call.present:
            stmt = form.statements[index]
            fact = ("calls",) if stmt.calls else facts[f"{call.path}.{stmt.name}"]
            if seen.setdefault(index, fact) != fact:
                return False
    return True


def _unit_names(blocks: list[str], naming: Callable[[str], str], taken: set[str]) -> dict:
    """A distinct name per block's unit, clear of `taken`."""
    used = set(taken)
    out = {}
    for block in blocks:
        name = naming(block)
        while name in used:
            name += "_"
        used.add(name)
        out[block] = name
    return out


def camel_case(block: str) -> str:
    """`inverted_residual` -> `InvertedResidual` (a class's name)."""
    return "".join(part[:1].upper() + part[1:] for part in block.split("_")) or "Block"


# ----------------------------------------------------------------------------- a unit's body


@dataclass(frozen=True)
class Spelling:
    """How a backend writes a unit's body: its input and indentation, a statement computed
    from the variables it reads, and a condition value."""

    input: str
    indent: int
    compute: Callable[[ir.BlockStatement, str, tuple[Code, ...]], Code]  # (stmt, path, inputs)
    value: Callable[[str], str]  # argument name -> how the body reads it
    statement: Callable[[Code, int, str], str]  # the backend's layout


def body(plan: Plan, form: ir.Block, spelling: Spelling) -> list[str]:
    """The lines of a unit's body: each statement some call has, under its condition, then the
    return of the call's last statement. Statements under one condition share an `if`, and
    `if not` that condition right after it is its `else`."""
    calls = [c for c in plan.calls.values() if c.block == form.name]
    used = sorted({i for c in calls for i in c.present})
    local = variable_names(
        dict.fromkeys(form.statements[i].name for i in used), {"self", spelling.input}
    )
    arguments = plan.arguments[form.name]
    conditions = {i: _python(form.statements[i].condition, arguments, spelling) for i in used}
    groups: list[tuple[str | None, list[str]]] = []
    for i in used:
        stmt = form.statements[i]
        having = [c for c in calls if i in c.present]
        if stmt.reads:
            inputs = tuple(spelling.input if r == "in" else local[r] for r in stmt.reads)
        else:
            ends = {_before(i, c) for c in having}
            inputs = (_running(ends, local, conditions, form, spelling.input),)
        code = spelling.compute(stmt, f"{having[0].path}.{stmt.name}", inputs)
        indent = spelling.indent + (INDENT if conditions[i] else 0)
        line = spelling.statement(code, indent, f"{local[stmt.name]} = ")
        if groups and conditions[i] is not None and groups[-1][0] == conditions[i]:
            groups[-1][1].append(line)
        else:
            groups.append((conditions[i], [line]))
    lines, previous = [], None
    pad = " " * spelling.indent
    for condition, block in groups:
        if condition is not None and previous is not None and condition == f"not {previous}":
            lines.append(f"{pad}else:")
            condition = None
        elif condition is not None:
            lines.append(f"{pad}if {condition}:")
        previous = condition
        lines += block
    ends = {_before(len(form.statements), c) for c in calls}
    out = _running(ends, local, conditions, form, spelling.input)
    lines.append(spelling.statement(out, spelling.indent, "return "))
    return lines


def _python(condition: str | None, arguments: dict, spelling: Spelling) -> str | None:
    """A condition over what the unit was given: `self.stride == 1 and ...`."""
    if condition is None:
        return None
    return fill(condition, {name: spelling.value(a) for name, a in arguments.items()})


def _before(index: int, call: ir.BlockCall) -> int | None:
    """The statement before `index` that this call has (None: the block's input)."""
    earlier = [i for i in call.present if i < index]
    return earlier[-1] if earlier else None


def _running(ends: set, local: dict, conditions: dict, form: ir.Block, given: str) -> str:
    """What a statement reading "the statement before it" reads: a name where every call agrees
    on which, else a conditional expression choosing by the candidates' conditions (the latest
    candidate whose condition holds is the one the call has)."""
    names = {given if e is None else local[form.statements[e].name] for e in ends}
    if len(names) == 1:
        return names.pop()
    expr = given if None in ends else None
    for e in sorted(e for e in ends if e is not None):
        value = local[form.statements[e].name]
        if expr is None or conditions[e] is None:
            expr = value
        else:
            other = expr if expr.isidentifier() else f"({expr})"
            expr = f"{value} if {conditions[e]} else {other}"
    return expr


def too_long(text: str, width: int) -> bool:
    """Whether a line passes `width` (the unit then runs statement by statement)."""
    return any(len(line) > width for line in text.splitlines())


def call_arguments(plan: Plan, call: ir.BlockCall) -> tuple[Pair, ...]:
    """`project=True, ...`: the values a call's conditions read, by their unit's argument names
    (a size as a tuple)."""
    arguments = plan.arguments[call.block]
    return tuple(
        Pair(arguments[name], tup(v) if isinstance(v, tuple) else literal(v))
        for name, v in call.values
    )
