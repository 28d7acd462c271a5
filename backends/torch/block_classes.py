"""Blocks as nn.Module classes: the spec's `block basic(...) { ... }` becomes `class Basic`, whose
forward runs the block's statements (backends/block_plan.py), and `layer2 = basic(...) * 2`
becomes `self.layer2 = nn.Sequential(Basic(project=True), Basic(project=False))`, called once.
The model's __init__ still builds each call's layers with the sizes the spec gives them
(`self.layer2[0].conv1 = nn.Sequential(...)`); the class only runs them.
"""

from __future__ import annotations

from archdsl.backends.block_plan import BODY, Plan, Spelling, body, call_arguments
from archdsl.backends.pysource import INDENT, Call, Code, flat
from archdsl.backends.torch.layout import statement

from archdsl import ir

INPUT = "x"  # a class's forward input


def class_text(plan: Plan, form: ir.Block, chains: dict, merged) -> str:
    """`class Basic(nn.Module)`: __init__ keeps what the conditions read; forward runs the body.
    `chains` are the model's by statement name; `merged(merge, inputs)` joins named inputs."""
    arguments = plan.arguments[form.name]

    def compute(stmt: ir.BlockStatement, path: str, inputs: tuple[Code, ...]) -> Code:
        """`self.conv1(x)`, `self.out(conv2 + downsample)`, or a merge without layers."""
        if stmt.calls:
            return Call(f"self.{stmt.name}", inputs[:1])
        chain = chains[path]
        value = merged(chain.merge, inputs) if chain.merge else inputs[0]
        return Call(f"self.{stmt.name}", (value,)) if chain.ops else value

    spelling = Spelling(INPUT, BODY + INDENT, compute, lambda a: f"self.{a}", statement)
    lines = [
        f"class {plan.units[form.name]}(nn.Module):",
        f'    """The spec\'s block `{form.name}`: its statements, run in order."""',
    ]
    if arguments:
        lines += ["", f"    def __init__(self, {', '.join(arguments.values())}):"]
        lines += [
            "        super().__init__()",
            *(f"        self.{a} = {a}" for a in arguments.values()),
        ]
    lines += [
        "",
        f"    def forward(self, {INPUT}):",
        '        """The block\'s output for a batch."""',
        *body(plan, form, spelling),
    ]
    return "\n".join(lines)


def constructor(plan: Plan, path: str) -> Code:
    """`Basic(project=True)`: the module of one call, given the values its conditions read."""
    call = plan.calls[path]
    return Call(plan.units[call.block], call_arguments(plan, call))


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
