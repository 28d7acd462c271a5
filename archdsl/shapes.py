"""Shape inference: each op's rule and counts from its spec (archdsl/ops), diagnostics, report."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from archdsl import ir
from archdsl.diagnostics import Diagnostic, error, info, warning
from archdsl.graph import resolve
from archdsl.naming import op_labels
from archdsl.ops import REGISTRY
from archdsl.ops.spec import Out, Shape, ShapeError, Tensor, TokenIds, fmt, layout
from archdsl.ops.windows import resolve_padding, window_out

__all__ = [
    "Layer",
    "Out",
    "Report",
    "Shape",
    "ShapeError",
    "infer",
    "resolve_padding",
    "window_out",
]


@dataclass(frozen=True)
class Layer:
    """One op's row in the report."""

    name: str
    statement: str
    op: str
    input_shapes: tuple[Shape, ...]  # one per input (two or more for concat and add)
    output_shape: Shape
    trainable_params: int
    frozen_params: int
    macs: int
    formula: str
    span: ir.Span
    built: bool = True  # False for a statement that never reaches the output (W103)

    @property
    def input_shape(self) -> Shape:
        """The shape of the first input (the only one but for concat and add)."""
        return self.input_shapes[0]

    @property
    def params(self) -> int:
        """All parameters, frozen ones (batch-norm statistics) included."""
        return self.trainable_params + self.frozen_params

    @property
    def activations(self) -> int:
        """Number of output values per example."""
        return math.prod(self.output_shape)


@dataclass
class Report:
    """The result of shape inference over a whole graph."""

    graph: ir.Graph
    layers: list[Layer] = field(default_factory=list)
    outputs: dict[str, Shape] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    order: list[ir.Statement] = field(default_factory=list)
    live: set[str] = field(default_factory=set)

    @property
    def total_params(self) -> int:
        """Every parameter, batch-norm running statistics included (Keras's summary count)."""
        return sum(layer.params for layer in self.layers)

    @property
    def trainable_params(self) -> int:
        """Parameters a framework optimises (PyTorch's `parameters()` count)."""
        return sum(layer.trainable_params for layer in self.layers)

    @property
    def total_macs(self) -> int:
        """Multiply-accumulates per example in conv and dense layers; bias adds excluded."""
        return sum(layer.macs for layer in self.layers)

    @property
    def total_activations(self) -> int:
        """Output values of every op the model builds, per example."""
        return sum(layer.activations for layer in self.layers if layer.built)

    def shape_of(self, statement: str, index: int) -> Shape:
        """Output shape of op `index` of `statement`."""
        return self.by_statement()[statement][index].output_shape

    def by_statement(self) -> dict[str, list[Layer]]:
        """Layers grouped by statement, in op order."""
        groups: dict[str, list[Layer]] = {}
        for layer in self.layers:
            groups.setdefault(layer.statement, []).append(layer)
        return groups


# ----------------------------------------------------------------------------- counting


def _slides(op_name: str) -> bool:
    """Whether the op (or "input") is a window that shrinks maps by its stride."""
    return op_name in REGISTRY and REGISTRY[op_name].window


def tensors(op, inputs: list[Shape]) -> dict[str, Tensor]:
    """The tensors an op holds, by portable parameter name (`weight`, `running_mean`, ...)."""
    return REGISTRY[op.op].tensors(op, inputs)


def count(op, inputs: list[Shape], output: Shape) -> tuple[int, int, int]:
    """(trainable params, frozen params, MACs) of one op, from its spec; MACs exclude bias adds."""
    held = tensors(op, inputs).values()
    trainable = sum(t.size for t in held if t.trainable)
    frozen = sum(t.size for t in held if not t.trainable)
    return trainable, frozen, REGISTRY[op.op].macs(op, inputs, output)


# ----------------------------------------------------------------------------- driver


def infer(graph: ir.Graph) -> Report:
    """Shapes, counts and diagnostics for every op, in dependency order."""
    report = Report(graph)
    order, diagnostics = resolve(graph)
    report.diagnostics.extend(diagnostics)
    if any(d.severity == "error" for d in diagnostics):
        return report
    report.order = order
    report.live = reachable(graph)
    known: dict[str, Shape] = {i.name: input_shape(i) for i in graph.inputs}
    origin: dict[str, str] = {i.name: "input" for i in graph.inputs}
    for stmt in order:
        if any(name not in known for name in stmt.inputs):
            continue  # an input failed earlier; its error is already reported
        shaper = origin[stmt.inputs[0]]
        shape, origin[stmt.name] = _statement(stmt, [known[n] for n in stmt.inputs], shaper, report)
        if shape is not None:
            known[stmt.name] = shape
            report.outputs[stmt.name] = shape
    report.diagnostics.extend(_softmax_note(graph))
    report.diagnostics.extend(_grouped_lrn_notes(graph))
    report.diagnostics.extend(_map_output(graph, report))
    return report


def _statement(
    stmt: ir.Statement, shapes: list[Shape], shaper: str, report: Report
) -> tuple[Shape | None, str]:
    """Run one statement's chain; record layers and diagnostics; its output shape (or None).

    `shaper` is the op that last changed the spatial size, carried along to spot W104.
    """
    for op, label in zip(stmt.ops, op_labels(stmt), strict=True):
        spec = REGISTRY[op.op]
        try:
            if layout(shapes[0]) == "ids" and not spec.reads_ids:
                raise _reads_ids(op.op, shapes[0])
            out = spec.shape(op, shapes)
        except ShapeError as exc:
            report.diagnostics.append(error(exc.code, op.span, _where(stmt, exc.message), exc.hint))
            return None, shaper
        if op.op == "flatten" and shapes[0][1:] == (1, 1) and _slides(shaper):
            report.diagnostics.append(_collapsed(stmt, shapes[0], op.span))
        if len(shapes[0]) == 3 and out.shape[1:] != shapes[0][1:]:
            shaper = op.op
        for code, message, hint in out.warnings:
            report.diagnostics.append(warning(code, op.span, _where(stmt, message), hint))
        built = stmt.name in report.live
        trainable, frozen, macs = count(op, shapes, out.shape) if built else (0, 0, 0)
        if built:
            report.diagnostics.extend(
                _oversized(stmt, op, trainable + frozen, shapes[0], out.shape)
            )
        report.layers.append(
            Layer(
                f"{stmt.name}.{label}",
                stmt.name,
                op.op,
                tuple(shapes),
                out.shape,
                trainable,
                frozen,
                macs,
                out.formula,
                op.span,
                built,
            )
        )
        shapes = [out.shape]
    shape = shapes[0]
    if stmt.expect is not None and tuple(stmt.expect) != shape:
        report.diagnostics.append(
            error(
                "E014",
                stmt.expect_span,
                _where(stmt, f"gives {fmt(shape)}, but `expect` says {fmt(stmt.expect)}"),
                f"fix the layers above or write `expect {fmt(shape)}`",
            )
        )
    return shape, shaper


def _reads_ids(op: str, ids: TokenIds) -> ShapeError:
    """E018: an op other than embedding given the integer ids of a token input."""
    return ShapeError(
        "E018",
        f"{op} cannot read the integer ids of a token input ({ids[0]} tokens of {ids.vocab})",
        f"add `embedding({ids.vocab}, D)` before it: it gives an L x D token sequence",
    )


def input_shape(inp: ir.Input) -> Shape:
    """An input's shape; that of token ids carries their vocabulary (TokenIds)."""
    return TokenIds(inp.shape[0], inp.vocab) if inp.vocab else inp.shape


def _where(stmt: ir.Statement, message: str) -> str:
    """A message prefixed with its statement and, inside a block, the call it came through."""
    via = f" ({stmt.via})" if stmt.via else ""
    return f"{stmt.name}: {message}{via}"


# one tensor of more elements than this (8 GiB in float32) passes the 32-bit indexing of many
# GPU kernels and the memory of most single accelerators
TENSOR_LIMIT = 2**31 - 1


def _oversized(
    stmt: ir.Statement, op, params: int, before: Shape, after: Shape
) -> list[Diagnostic]:
    """W106 when one op's parameters exceed TENSOR_LIMIT, or its output for one example is the
    first to (ops after it that keep the size are not reported again)."""
    values = math.prod(after) if math.prod(before) <= TENSOR_LIMIT else 0
    found = [
        (n, what)
        for n, what in ((params, "parameters"), (values, "output values per example"))
        if n > TENSOR_LIMIT
    ]
    return [
        warning(
            "W106",
            op.span,
            _where(
                stmt,
                f"{op.op} has {n:,} {what} ({4 * n / 2**30:,.0f} GiB in float32): past "
                "2**31 - 1 elements one tensor overflows the 32-bit indexing of many GPU kernels",
            ),
            "check the sizes above it (`archdsl shapes` shows where they grow); a flatten of a "
            "large map before dense is the usual cause",
        )
        for n, what in found
    ]


def _map_output(graph: ir.Graph, report: Report) -> list[Diagnostic]:
    """W105: a spec with a train section whose output is a map, not a vector of class scores,
    which the generated trainers (cross-entropy over classes) cannot train."""
    shape = report.outputs.get(graph.output)
    last = next((s for s in graph.statements if s.name == graph.output), None)
    if shape is None or len(shape) == 1 or last is None or graph.train.span is None:
        return []
    return [
        warning(
            "W105",
            last.ops[-1].span,
            f"the model's output `{graph.output}` is a {fmt(shape)} {_what(shape)}, not a vector "
            "of class scores: the generated trainers (cross-entropy over classes) cannot train it",
            f"end with e.g. `{_to_scores(shape)}`; without a `train` section the spec compiles "
            "as a feature extractor",
        )
    ]


def _what(shape: Shape) -> str:
    """How W105 names an output that is not a vector: a map or a token sequence."""
    return "token sequence" if len(shape) == 2 else "map"


def _to_scores(shape: Shape) -> str:
    """The ops that turn such an output into class scores."""
    return "token(0) |> dense(N)" if len(shape) == 2 else "global_avgpool |> flatten |> dense(N)"


def _collapsed(stmt: ir.Statement, shape: Shape, span: ir.Span) -> Diagnostic:
    """W104: flatten of a map that strided windows squeezed to C x 1 x 1."""
    return warning(
        "W104",
        span,
        f"{stmt.name}: the maps shrank to {fmt(shape)} before flatten, "
        f"so the layers after it see only {shape[0]} features",
        "if you expected more features, check the padding and strides above "
        "(`archdsl shapes` shows where the maps shrink)",
    )


def _grouped_lrn_notes(graph: ir.Graph) -> list[Diagnostic]:
    """I202: LRN after a grouped conv normalises across the groups; two towers would not."""
    notes = []
    for stmt in graph.statements:
        groups = 1
        for op in stmt.ops:
            if op.op in ("conv", "conv_transpose", "dense", "concat", "add"):
                groups = getattr(op, "groups", 1)
            elif op.op == "lrn" and groups > 1:
                notes.append(
                    info(
                        "I202",
                        op.span,
                        f"{stmt.name}: this LRN's window crosses the boundaries between the {groups} "
                        f"channel groups of the conv before it; in the paper's {groups}-tower net "
                        "each tower normalises only its own channels",
                        "for the paper's form write the layers inside `towers "
                        f"{groups} {{ ... }}` (see specs/alexnet_two_tower.arch)",
                    )
                )
    return notes


def _softmax_note(graph: ir.Graph) -> list[Diagnostic]:
    """I201: a trailing softmax with a cross-entropy loss is dropped for training."""
    if not trailing_softmax(graph):
        return []
    last = next(s for s in graph.statements if s.name == graph.output)
    return [
        info(
            "I201",
            last.ops[-1].span,
            "the model ends in softmax and trains with cross-entropy: training uses the logits "
            "before the softmax, and the softmax is applied only for inference",
            "nothing to do; this is how the generated code keeps the loss numerically stable",
        )
    ]


def reachable(graph: ir.Graph) -> set[str]:
    """The inputs and statements whose values reach the output: what the backends build."""
    inputs = {s.name: s.inputs for s in graph.statements}
    live, stack = set(), [graph.output]
    while stack:
        name = stack.pop()
        if name not in live:
            live.add(name)
            stack.extend(inputs.get(name, ()))
    return live


def trailing_softmax(graph: ir.Graph) -> bool:
    """True when the output statement ends in softmax (applied at inference only)."""
    last = next((s for s in graph.statements if s.name == graph.output), None)
    return bool(last and last.ops and last.ops[-1].op == "softmax")
