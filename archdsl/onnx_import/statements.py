"""Layers -> the spec's statements: one per learned layer with the ops that follow it, named
after the ONNX nodes where their names make safe identifiers, written as the language's text."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from archdsl.diagnostics import visible
from archdsl.lowering import MODEL_FILE_NAMES, unsafe_identifier
from archdsl.onnx_import.graph import Net
from archdsl.onnx_import.layers import Layer
from archdsl.ops import LEARNED, MERGES, REGISTRY

# ops that begin a statement of their own once the current one has a learned op or a merge
STARTERS = {*LEARNED, "flatten", "global_avgpool", "adaptive_avgpool"}
# words a name may not be besides unsafe_identifier's: the grammar's, the blocks', the ops'
RESERVED = {
    *("model", "input", "init", "train", "towers", "block", "if", "else", "not", "and", "or"),
    *("expect", "from", "true", "false", "none", "merge", "in", "index", "position"),
    *("positions", "max", "min"),
    *REGISTRY,
    *MODEL_FILE_NAMES,
}
NAME_LIMIT = 48  # characters of a name taken from the ONNX file


@dataclass
class Statement:
    """A statement: its name, its layers (chained), and the names its first layer reads."""

    name: str
    layers: list[Layer]
    reads: list[str]

    @property
    def output(self) -> str:
        """The ONNX value the statement computes."""
        return self.layers[-1].output


def group(net: Net, layers: list[Layer]) -> list[list[Layer]]:
    """Layers chained into statements, the one computing the model's output last."""
    readers = Counter(v for layer in layers for v in layer.inputs)
    readers[net.output] += 1
    groups: list[list[Layer]] = []
    for layer in layers:
        current = groups[-1] if groups else None
        if current and _continues(current, layer, readers):
            current.append(layer)
        else:
            groups.append([layer])
    last = [g for g in groups if g[-1].output == net.output]
    return [g for g in groups if g[-1].output != net.output] + last


def _continues(current: list[Layer], layer: Layer, readers: Counter) -> bool:
    """Whether `layer` chains onto the statement `current` (it alone reads its output)."""
    if layer.op in MERGES or layer.inputs != [current[-1].output]:
        return False
    if readers[current[-1].output] != 1:
        return False
    body = any(step.op in LEARNED or step.op in MERGES for step in current)
    return not (layer.op in STARTERS and body)


def name_statements(net: Net, groups: list[list[Layer]], input_name: str) -> list[Statement]:
    """Each group named (its first node's scope, else its first op and a number) and its
    inputs resolved to the names of the statements (or the input) computing them."""
    taken = {input_name}
    counts: Counter = Counter()
    names = {net.input: input_name}
    statements = []
    for layers in groups:
        first = layers[0]
        name = safe_name(scope(first.node.name, first.node.op_type, first.op), taken)
        while name is None:  # op-kind names: conv1, conv2, ... (skipping ones taken)
            counts[first.op] += 1
            name = safe_name(f"{first.op}{counts[first.op]}", taken)
        taken.add(name)
        statements.append(Statement(name, layers, list(first.inputs)))
        names[layers[-1].output] = name
    for statement in statements:
        statement.reads = [names[v] for v in statement.reads]
    return statements


def scope(node_name: str, op_type: str, op: str) -> str:
    """The module path in an exporter's node name, as an identifier's raw material:
    `/layer1/layer1.0/conv1/Conv` -> `layer1_0_conv1`, `/0/stem/conv/Conv` -> `stem`."""
    parts = [p for p in node_name.split("/") if p]
    # names exporters generate: `Conv_12`, torch.export's `node_Conv_3`, `node_mean`, `n4_2`
    generated = re.compile(rf"{re.escape(op_type)}(_\d+)?|node_\w*|n\d+(_\d+)?", re.IGNORECASE)
    if parts and generated.fullmatch(parts[-1]):
        parts.pop()
    path: list[str] = []
    for part in parts:  # torch repeats the parent's name: /layer1/layer1.0/downsample/downsample.0
        if path and part.startswith(path[-1] + "."):
            path.pop()
        path += part.split(".")
    while path and path[0].isdigit():
        path.pop(0)
    if len(path) > 1 and re.fullmatch(rf"{re.escape(op)}(_\d+)?", path[-1]):
        path.pop()
    return "_".join(path)


def safe_name(raw: str, taken: set[str]) -> str | None:
    """`raw` as a valid, unused name of the language (or None when nothing is left of it)."""
    name = re.sub(r"[^A-Za-z0-9_]+", "_", raw).strip("_")
    name = re.sub(r"_+", "_", name.lstrip("0123456789_"))[:NAME_LIMIT].rstrip("_")
    if not name:
        return None
    if name in RESERVED or unsafe_identifier(name):
        name += "_"
    base, n = name, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    return name if unsafe_identifier(name) is None and name not in RESERVED else None


def comment(text: str) -> str:
    """Text from the ONNX file made safe for a one-line comment: printable ASCII, escaped."""
    return visible(text).encode("ascii", "backslashreplace").decode("ascii")


def render(
    header: list[str], model: str, input_line: str, statements: list[Statement], net: Net
) -> str:
    """The spec's text."""
    width = max(len(s.name) for s in statements)
    lines = [f"# {comment(line)}" for line in header]
    lines += ["", f"model {model}", "", input_line, ""]
    previous = None
    for statement in statements:
        dims = " x ".join(map(str, net.shape(statement.output)[1:]))
        lines.append(f"{statement.name:<{width}} = {_body(statement, previous)}  expect {dims}")
        previous = statement.name
    return "\n".join(lines) + "\n"


def _body(statement: Statement, previous: str | None) -> str:
    """`conv(64, kernel=3) |> relu from x`, or `add(a, b) |> relu`."""
    first, *rest = statement.layers
    if first.op in MERGES:
        calls = [f"{first.op}({', '.join(statement.reads)})"]
    else:
        calls = [first.call()]
    calls += [layer.call() for layer in rest]
    source = statement.reads[0]
    reads_previous = first.op in MERGES or source == previous or previous is None
    return " |> ".join(calls) + ("" if reads_previous else f"  from {source}")
