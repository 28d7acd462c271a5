"""Blocks as Keras builder functions: `block basic(...) { ... }` becomes `def basic(x, layers,
project)`, which runs the block's statements on the layers a call is given (block_plan.py),
and `layer2 = basic(...) * 2` two calls of it in build_model, each handed its layers by
statement: `basic(x, {"conv1": [keras.layers.Conv2D(...), ...], ...}, project=True)`.

Every layer is still created in build_model with the sizes the spec gives its call, and named
as before, so the model's layers and weights are those of the statement-by-statement form.
"""

from __future__ import annotations

from collections.abc import Callable

from archdsl.backends.block_plan import BODY, Plan, Spelling, body, call_arguments, calls_under
from archdsl.backends.keras.layout import statement
from archdsl.backends.pysource import Call, Code, Pair, Seq, string

from archdsl import ir

RUN = "run_layers"  # model.py's helper running a statement's layers
PARTIAL = "partial"  # functools.partial: a nested call, its layers bound
INPUT = "x"
LAYERS = "layers"
RUN_FUNCTION = f'''def {RUN}(layers, x):
    """x through each of `layers` in turn (Keras layers, or calls of a block's function)."""
    for layer in layers:
        x = layer(x)
    return x'''
# the names a builder function's arguments may not take
ARGUMENTS_RESERVED = {INPUT, LAYERS, RUN, PARTIAL, "keras"}


def function_text(plan: Plan, form: ir.Block) -> str:
    """`def basic(x, layers, project):` running the block's statements on `layers`."""
    arguments = list(plan.arguments[form.name].values())
    signature = ", ".join([INPUT, LAYERS, *arguments])
    spelling = Spelling(INPUT, BODY, _compute, lambda name: name, statement)
    return "\n".join(
        [
            f"def {plan.units[form.name]}({signature}):",
            f'    """The spec\'s block `{form.name}`: its statements, run in order."""',
            *body(plan, form, spelling),
        ]
    )


def _compute(stmt: ir.BlockStatement, path: str, inputs: tuple[Code, ...]) -> Code:
    """`run_layers(layers["conv1"], x)`; a merge's layers read the list of its inputs."""
    given = inputs[0] if len(inputs) == 1 else Seq("[]", inputs)
    return Call(RUN, (f"{LAYERS}[{string(stmt.name)}]", given))


def call_code(
    plan: Plan,
    path: str,
    source: Code | None,
    forms: dict[str, ir.Block],
    names: set[str],
    layer_calls: Callable[[str], list[Code]],
) -> Code:
    """One call: `basic(source, {statement: [its layers]}, project=True)`; without a source,
    the `partial` of a call made inside another block (its caller's `run_layers` runs it).
    `layer_calls(name)` constructs the layers of a statement; `names` are the graph's."""
    call = plan.calls[path]
    form = forms[call.block]
    entries = []
    for index in call.present:
        stmt = form.statements[index]
        here = f"{path}.{stmt.name}"
        if stmt.calls:
            inner = calls_under(here, plan.calls, names)
            items = [call_code(plan, p, None, forms, names, layer_calls) for p in inner]
        else:
            items = layer_calls(here)
        entries.append(Pair(string(stmt.name), Seq("[]", tuple(items)), ": "))
    layers = Seq("{}", tuple(entries))
    values = call_arguments(plan, call)
    unit = plan.units[call.block]
    if source is None:
        return Call(PARTIAL, (unit, Pair(LAYERS, layers), *values))
    return Call(unit, (source, layers, *values))


def used_units(plan: Plan, forms: dict[str, ir.Block], names: set[str]) -> list[str]:
    """The blocks whose functions the model calls: those of the top-level statements run as
    calls, and of the calls inside them, in the spec's order of blocks."""
    found: set[str] = set()
    pending = [p for top in plan.groups for p in calls_under(top, plan.calls, names)]
    while pending:
        call = plan.calls[pending.pop()]
        found.add(call.block)
        for index in call.present:
            stmt = forms[call.block].statements[index]
            if stmt.calls:
                pending += calls_under(f"{call.path}.{stmt.name}", plan.calls, names)
    return [b for b in forms if b in found]
