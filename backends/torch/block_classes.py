"""Blocks as nn.Module classes: the spec's `block basic(...) { ... }` becomes `class Basic`, whose
forward runs the block's statements in order, and `layer2 = basic(...) * 2` becomes
`self.layer2 = nn.Sequential(Basic(project=True), Basic(project=False))`, called once.

A class's forward is the block's body: each statement reads the statement before it (or what
it names), a statement with a condition runs under `if` with the condition in Python over the
values the call was made with (front end: block_forms.py), and a statement that calls blocks
calls its own Sequential. The model's __init__ builds each call's layers with their sizes, as
before; the class only runs them. A block runs as a class when every call of it can: each
statement it has reaches the output, and the calls agree on which statements hold layers and
how they merge their inputs; otherwise its calls are run statement by statement from the
model's forward, as are all calls of a model with towers.
"""

from __future__ import annotations

from dataclasses import dataclass

from archdsl import ir
from archdsl.backends.pysource import INDENT, Call, Code, Pair, flat, num, string, variable_names
from archdsl.backends.torch.layout import statement
from archdsl.lowering import FRAMEWORK_MEMBERS

INPUT = "x"  # a class's forward input
METHOD = 8  # indentation of a method body


@dataclass(frozen=True)
class Plan:
    """Which blocks run as classes, their calls, and the top-level statements called as one."""

    classes: dict[str, str]  # block -> class name
    calls: dict[str, ir.BlockCall]  # path -> call, for the calls of those blocks
    attributes: dict[str, dict[str, str]]  # block -> {name its conditions read: attribute}
    groups: dict[str, tuple[str, str]]  # top-level statement -> (its input, its output)


def plan(graph: ir.Graph, chains: dict, excluded: set[str], taken: set[str], towers: int) -> Plan:
    """The plan for a graph, `chains` by statement name (those the model builds), the blocks in
    `excluded` run statement by statement; class names avoid `taken`."""
    forms = {b.name: b for b in graph.blocks}
    calls = {c.path: c for c in graph.calls}
    names = {s.name for s in graph.statements}
    runnable: dict[str, bool] = {}

    def call_ok(call: ir.BlockCall) -> bool:
        """Whether one call's statements are all built and nest as its block says."""
        form = forms[call.block]
        for index in call.present:
            stmt = form.statements[index]
            path = f"{call.path}.{stmt.name}"
            if stmt.calls:
                inner = _calls_under(path, calls, names)
                if not inner or not all(block_ok(calls[p].block) for p in inner):
                    return False
            elif path not in chains:
                return False
        return True

    def block_ok(block: str) -> bool:
        """Whether every call of `block` runs as one class."""
        if block not in runnable:
            runnable[block] = False
            if block in excluded:
                return False  # a block never calls itself: this only stops a loop
            mine = [c for c in calls.values() if c.block == block]
            runnable[block] = all(call_ok(c) for c in mine) and _agree(forms[block], mine, chains)
        return runnable[block]

    if towers > 1:
        return Plan({}, {}, {}, {})
    kept = [b for b in forms if block_ok(b)]
    classes = _class_names(kept, taken)
    attributes = {b: _attributes(forms[b]) for b in kept}
    classed = {p: c for p, c in calls.items() if c.block in classes}
    groups = {}
    for top in dict.fromkeys(s.name.split(".")[0] for s in graph.statements if "." in s.name):
        inner = _calls_under(top, classed, names)
        members = [s.name for s in graph.statements if s.name.startswith(top + ".")]
        if inner and all(m in chains for m in members) and graph.output not in members:
            groups[top] = (classed[inner[0]].source, members[-1])
    return Plan(classes, classed, attributes, groups)


def _calls_under(path: str, calls: dict, names: set[str]) -> list[str]:
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


def _agree(form: ir.Block, calls: list[ir.BlockCall], chains: dict) -> bool:
    """Whether the calls agree, statement by statement, on holding layers and on merging."""
    seen: dict[int, tuple] = {}
    for call in calls:
        for index in call.present:
            stmt = form.statements[index]
            chain = chains.get(f"{call.path}.{stmt.name}")
            shape = ("calls",) if stmt.calls else (chain.merge, bool(chain.ops))
            if seen.setdefault(index, shape) != shape:
                return False
    return True


def _class_names(blocks: list[str], taken: set[str]) -> dict[str, str]:
    """CamelCase class names (`inverted_residual` -> `InvertedResidual`), each distinct."""
    used = set(taken)
    out = {}
    for block in blocks:
        name = "".join(part[:1].upper() + part[1:] for part in block.split("_")) or "Block"
        while name in used or not name.isidentifier():
            name += "_"
        used.add(name)
        out[block] = name
    return out


def _attributes(form: ir.Block) -> dict[str, str]:
    """An attribute per name the conditions read, clear of the block's statements and of
    nn.Module's own members."""
    reserved = {s.name for s in form.statements} | FRAMEWORK_MEMBERS
    return variable_names(form.reads, reserved)


# ----------------------------------------------------------------------------- construction


def constructor(plan: Plan, path: str) -> Code:
    """`Basic(project=True)`: the module of one call, given the values its conditions read."""
    call = plan.calls[path]
    attributes = plan.attributes[call.block]
    args = tuple(Pair(attributes[name], _value(value)) for name, value in call.values)
    return Call(plan.classes[call.block], args)


def sequence(items: list[Code]) -> Code:
    """`nn.Sequential(a, b, *(c for _ in range(3)))`: runs of equal calls written once."""
    args: list[Code] = []
    run = 1
    for i, item in enumerate(items):
        if i + 1 < len(items) and items[i + 1] == item:
            run += 1
            continue
        args.append(item if run == 1 else f"*({flat(item)} for _ in range({run}))")
        run = 1
    return Call("nn.Sequential", tuple(args))


def _value(value) -> str:
    """A condition's value as a Python literal."""
    if isinstance(value, str):
        return string(value)
    if isinstance(value, tuple):
        return "(" + ", ".join(num(v) for v in value) + ")"
    return num(value)


# ----------------------------------------------------------------------------- classes


def class_text(plan: Plan, form: ir.Block, chains: dict, merged) -> str:
    """`class Basic(nn.Module)` with __init__ storing what the conditions read, and forward."""
    attributes = plan.attributes[form.name]
    calls = [c for c in plan.calls.values() if c.block == form.name]
    lines = [
        f"class {plan.classes[form.name]}(nn.Module):",
        f'    """The spec\'s block `{form.name}`: its statements, run in order."""',
    ]
    if attributes:
        params = ", ".join(attributes.values())
        lines += ["", f"    def __init__(self, {params}):", "        super().__init__()"]
        lines += [f"        self.{a} = {a}" for a in attributes.values()]
    lines += ["", *_forward(form, calls, attributes, chains, merged)]
    return "\n".join(lines)


def _forward(form: ir.Block, calls: list[ir.BlockCall], attributes: dict, chains, merged):
    """forward(x): each statement some call has, under its condition, reading what it reads;
    consecutive statements under one condition share an `if`, and `if not` that condition
    right after it is its `else`."""
    used = sorted({i for c in calls for i in c.present})
    local = variable_names(dict.fromkeys(form.statements[i].name for i in used), {"self", INPUT})
    conditions = {i: _python(form.statements[i].condition, attributes) for i in used}
    groups: list[tuple[str | None, list[str]]] = []
    for i in used:
        code = _statement_code(form, i, calls, local, conditions, chains, merged)
        indent = METHOD if conditions[i] is None else METHOD + INDENT
        line = statement(code, indent, f"{local[form.statements[i].name]} = ")
        if groups and conditions[i] is not None and groups[-1][0] == conditions[i]:
            groups[-1][1].append(line)
        else:
            groups.append((conditions[i], [line]))
    lines = ["    def forward(self, x):", '        """The block\'s output for a batch."""']
    previous = None
    for condition, body in groups:
        if condition is not None and previous is not None and condition == f"not {previous}":
            lines.append(" " * METHOD + "else:")
            condition = None
        elif condition is not None:
            lines.append(f"{' ' * METHOD}if {condition}:")
        previous = condition
        lines += body
    ends = {_before(len(form.statements), c) for c in calls}
    lines.append(statement(_running(ends, local, conditions, form), METHOD, "return "))
    return lines


def _python(condition: str | None, attributes: dict) -> str | None:
    """A condition over the module's attributes: `self.stride == 1 and ...`."""
    if condition is None:
        return None
    return condition.format(**{name: f"self.{a}" for name, a in attributes.items()})


def _before(index: int, call: ir.BlockCall) -> int | None:
    """The statement before `index` that this call has (None: the block's input)."""
    earlier = [i for i in call.present if i < index]
    return earlier[-1] if earlier else None


def _running(ends: set, local: dict, conditions: dict, form: ir.Block) -> str:
    """What a statement reading "the statement before it" reads: a name where every call agrees
    on which, else a conditional expression choosing by the candidates' conditions (the latest
    candidate whose condition holds is the one the call has)."""
    names = {INPUT if e is None else local[form.statements[e].name] for e in ends}
    if len(names) == 1:
        return names.pop()
    expr = INPUT if None in ends else None
    for e in sorted(e for e in ends if e is not None):
        value = local[form.statements[e].name]
        if expr is None or conditions[e] is None:
            expr = value
        else:
            other = expr if expr.isidentifier() else f"({expr})"
            expr = f"{value} if {conditions[e]} else {other}"
    return expr


def _statement_code(form, index, calls, local, conditions, chains, merged) -> Code:
    """What one statement computes, from the variables it reads."""
    stmt = form.statements[index]
    having = [c for c in calls if index in c.present]
    if stmt.reads:
        inputs = tuple(INPUT if r == "in" else local[r] for r in stmt.reads)
    else:
        ends = {_before(index, c) for c in having}
        inputs = (_running(ends, local, conditions, form),)
    attribute = f"self.{stmt.name}"
    if stmt.calls:
        return Call(attribute, inputs[:1])
    chain = chains[f"{having[0].path}.{stmt.name}"]
    value = merged(chain.merge, inputs) if chain.merge else inputs[0]
    return Call(attribute, (value,)) if chain.ops else value
