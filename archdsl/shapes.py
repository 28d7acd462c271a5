"""Shape inference: one pure function per op family, a dispatch table, params and MACs."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from archdsl import ir
from archdsl.diagnostics import Diagnostic, error, info, warning
from archdsl.graph import resolve
from archdsl.naming import op_labels

Shape = tuple[int, ...]


class ShapeError(Exception):
    """An op cannot be applied to the shape it receives."""

    def __init__(self, code: str, message: str, hint: str = ""):
        super().__init__(message)
        self.code, self.message, self.hint = code, message, hint


@dataclass(frozen=True)
class Out:
    """What a shape function returns: the shape, how it was computed, and any warnings."""

    shape: Shape
    formula: str = ""
    warnings: tuple[tuple[str, str, str], ...] = ()


@dataclass(frozen=True)
class Layer:
    """One op's row in the report."""

    name: str
    statement: str
    op: str
    input_shape: Shape
    output_shape: Shape
    trainable_params: int
    frozen_params: int
    macs: int
    formula: str
    span: ir.Span
    built: bool = True  # False for a statement that never reaches the output (W103)

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


# ----------------------------------------------------------------------------- windows


def resolve_padding(pad, size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """(before, after) padding along one axis; `same` pads as TensorFlow does (extra after)."""
    if pad == "valid":
        return (0, 0)
    if pad == "same":
        effective = dilation * (kernel - 1) + 1
        total = max((math.ceil(size / stride) - 1) * stride + effective - size, 0)
        return (total // 2, total - total // 2)
    return (pad, pad)


def window_out(
    size: int,
    kernel: int,
    stride: int,
    before: int,
    after: int,
    dilation: int,
    ceil: bool,
    pool: bool = False,
) -> int:
    """Output length of a sliding window; in ceil mode a pool (not a conv) drops a last window
    that would start in the padding, as PyTorch's pools do."""
    span = size + before + after - (dilation * (kernel - 1) + 1)
    if not ceil:
        return span // stride + 1 if span >= 0 else 0
    out = -(-span // stride) + 1
    if pool and (out - 1) * stride >= size + before:
        out -= 1
    return out


def _axis_pads(op, hw: tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]]:
    """Resolved (before, after) padding for H and W."""
    dil = getattr(op, "dilation", (1, 1))
    pad = op.pad if isinstance(op.pad, str) else None
    return tuple(
        resolve_padding(pad or op.pad[a], hw[a], op.kernel[a], op.stride[a], dil[a]) for a in (0, 1)
    )


def _windowed(op, shape: Shape, channels: int, what: str) -> Out:
    """Shared rule of conv and pools: output size, formula, tiling and collapse warnings."""
    c, h, w = shape
    dil = getattr(op, "dilation", (1, 1))
    pads = _axis_pads(op, (h, w))
    outs, formulas, notes = [], [], []
    for a, size in enumerate((h, w)):
        before, after = pads[a]
        k, s, d = op.kernel[a], op.stride[a], dil[a]
        o = window_out(size, k, s, before, after, d, op.ceil, op.op != "conv")
        effective = d * (k - 1) + 1
        formulas.append(_window_formula(size, before + after, effective, s, op.ceil, o))
        if o <= 0:
            raise ShapeError(
                "E007",
                f"{what} {_kxk(op.kernel)} needs at least {effective} {'rows' if a == 0 else 'columns'}"
                f" (padding included) but gets {size + before + after}",
                "use a smaller kernel or stride, add padding, or feed a larger input",
            )
        outs.append(o)
        unread = size + before + after - ((o - 1) * s + effective)
        # a window smaller than its stride skips pixels by design (strided 1x1 projections)
        skipped = 0 if effective < s else max(unread - after, 0)
        notes.append((skipped, size, k, s, before, after, effective))
    out = Out((channels, outs[0], outs[1]), "; ".join(dict.fromkeys(formulas)))
    warns = list(_tiling_warning(op, what, notes))
    if h == 1 and w == 1 and max(op.kernel) > 1:
        warns.append(
            (
                "W102",
                f"{what} {_kxk(op.kernel)} runs on a 1x1 map: every tap but one sees only padding",
                "the maps collapsed earlier (check the strides before this layer), or use a 1x1 kernel",
            )
        )
    return Out(out.shape, out.formula, tuple(warns))


def _window_formula(size: int, pads: int, effective: int, stride: int, ceil: bool, out: int) -> str:
    """How an output length was computed, e.g. `floor((227 + 0 - 11) / 4) + 1 = 55`."""
    rounding = "ceil" if ceil else "floor"
    text = f"{rounding}(({size} + {pads} - {effective}) / {stride})"
    if ceil and out == -(-(size + pads - effective) // stride):  # a pool dropped its last window
        return f"{text} + 1 - 1 = {out} (the last window would start in the padding)"
    return f"{text} + 1 = {out}"


def _tiling_warning(op, what: str, notes):
    """W101 when a floor-rounded window leaves input rows or columns (not padding) unread."""
    if op.ceil or all(n[0] <= 0 for n in notes):
        return
    same_axes = notes[0] == notes[1]
    axes = (
        [("rows and columns", notes[0])]
        if same_axes
        else [(label, n) for label, n in (("rows", notes[0]), ("columns", notes[1])) if n[0] > 0]
    )
    for label, (lost, size, _k, s, before, after, effective) in axes:
        exact = (size + before + after - effective) / s + 1
        smaller, larger = size - lost, size + (s - lost)
        tiling_pad = next(
            (p for p in range(before + 1, before + s + 1) if (size + 2 * p - effective) % s == 0),
            None,
        )
        remedies = [f"`pad={tiling_pad}`"] if tiling_pad is not None and before == after else []
        remedies.append("`ceil=true` (rounding up, as Caffe pools and cuda-convnet convs do)")
        yield (
            "W101",
            f"{what} {_kxk(op.kernel)} at stride {s} does not tile its {size}-pixel input: "
            f"({size} + {before + after} - {effective}) / {s} + 1 = {exact:g}, "
            f"so {_unread(lost, label)} never read",
            f"an input of {larger} (or {smaller}) would tile exactly; so would "
            + " or ".join(remedies),
        )


def _unread(lost: int, label: str) -> str:
    """'the last row and column are', 'the last 3 rows are', ..."""
    if lost == 1:
        singular = label.replace("rows", "row").replace("columns", "column")
        return f"the last {singular} {'are' if ' and ' in label else 'is'}"
    return f"the last {lost} {label} are"


def _kxk(kernel: tuple[int, int]) -> str:
    return f"{kernel[0]}x{kernel[1]}"


def _need_rank(shape: Shape, rank: int, what: str) -> None:
    if len(shape) != rank:
        described = "a C x H x W map" if rank == 3 else "a flat vector"
        hint = (
            "add `flatten` before it"
            if rank == 1
            else "it needs a spatial input; move it before `flatten`"
        )
        raise ShapeError("E018", f"{what} needs {described}, got {_fmt(shape)}", hint)


# ----------------------------------------------------------------------------- shape functions


def conv_shape(op: ir.Conv, shapes: list[Shape]) -> Out:
    """Convolution: channels become `filters`; groups must divide both channel counts."""
    (shape,) = shapes
    _need_rank(shape, 3, "conv")
    c = shape[0]
    for count, what in ((c, "input channels"), (op.filters, "filters")):
        if count % op.groups:
            divisors = [
                g for g in range(1, min(c, op.filters) + 1) if c % g == 0 and op.filters % g == 0
            ]
            raise ShapeError(
                "E008",
                f"groups={op.groups} does not divide the {count} {what}",
                f"groups must divide both {c} and {op.filters}: try one of {divisors[-6:]}",
            )
    return _windowed(op, shape, op.filters, "conv")


def pool_shape(op, shapes: list[Shape]) -> Out:
    """Max or average pooling: channels kept."""
    (shape,) = shapes
    _need_rank(shape, 3, op.op)
    return _windowed(op, shape, shape[0], op.op)


def global_pool_shape(op, shapes: list[Shape]) -> Out:
    """Global average pooling to C x 1 x 1."""
    (shape,) = shapes
    _need_rank(shape, 3, op.op)
    return Out((shape[0], 1, 1), f"mean over {shape[1]}x{shape[2]}")


def adaptive_pool_shape(op: ir.AdaptiveAvgPool, shapes: list[Shape]) -> Out:
    """Adaptive average pooling to C x size."""
    (shape,) = shapes
    _need_rank(shape, 3, op.op)
    return Out((shape[0], *op.size), f"adaptive {shape[1]}x{shape[2]} -> {_kxk(op.size)}")


def same_shape(op, shapes: list[Shape]) -> Out:
    """Element-wise ops and normalisations keep the shape."""
    (shape,) = shapes
    if op.op == "lrn":
        _need_rank(shape, 3, "lrn")
    return Out(shape)


def flatten_shape(op, shapes: list[Shape]) -> Out:
    """C x H x W -> C*H*W."""
    (shape,) = shapes
    n = math.prod(shape)
    return Out((n,), " * ".join(map(str, shape)) + f" = {n}")


def dense_shape(op: ir.Dense, shapes: list[Shape]) -> Out:
    """Dense layers need a flat input."""
    (shape,) = shapes
    if len(shape) != 1:
        raise ShapeError(
            "E012",
            f"dense({op.units}) receives the spatial tensor {_fmt(shape)}",
            f"add `flatten` before it: it would give {math.prod(shape)} features",
        )
    return Out((op.units,), f"{shape[0]} -> {op.units}")


def resize_shape(op: ir.Resize, shapes: list[Shape]) -> Out:
    """Spatial resize to a fixed size."""
    (shape,) = shapes
    _need_rank(shape, 3, "resize")
    return Out((shape[0], *op.size), f"{op.mode} {shape[1]}x{shape[2]} -> {_kxk(op.size)}")


def concat_shape(op, shapes: list[Shape]) -> Out:
    """Channel concatenation: everything but channels must agree."""
    first = shapes[0]
    for other in shapes[1:]:
        if len(other) != len(first) or other[1:] != first[1:]:
            raise ShapeError(
                "E013",
                f"concat inputs differ beyond channels: {' and '.join(_fmt(s) for s in shapes)}",
                "concat joins along channels; spatial sizes must be equal",
            )
    return Out(
        (sum(s[0] for s in shapes), *first[1:]), " + ".join(str(s[0]) for s in shapes) + " channels"
    )


def add_shape(op, shapes: list[Shape]) -> Out:
    """Element-wise sum: all shapes equal."""
    if len(set(shapes)) != 1:
        raise ShapeError(
            "E013",
            f"add inputs have different shapes: {' and '.join(_fmt(s) for s in shapes)}",
            "add needs equal shapes; project the shortcut (e.g. a 1x1 conv) to match",
        )
    return Out(shapes[0])


WINDOWED = ("conv", "maxpool", "avgpool")

SHAPE_RULES = {
    "conv": conv_shape,
    "maxpool": pool_shape,
    "avgpool": pool_shape,
    "global_avgpool": global_pool_shape,
    "adaptive_avgpool": adaptive_pool_shape,
    "lrn": same_shape,
    "batchnorm": same_shape,
    "dropout": same_shape,
    "relu": same_shape,
    "relu6": same_shape,
    "tanh": same_shape,
    "sigmoid": same_shape,
    "leaky_relu": same_shape,
    "softmax": same_shape,
    "flatten": flatten_shape,
    "dense": dense_shape,
    "resize": resize_shape,
    "concat": concat_shape,
    "add": add_shape,
}


# ----------------------------------------------------------------------------- counting


def count(op, input_shape: Shape, output_shape: Shape) -> tuple[int, int, int]:
    """(trainable params, frozen params, MACs) of one op; MACs exclude bias adds."""
    if op.op == "conv":
        fan_in = (input_shape[0] // op.groups) * op.kernel[0] * op.kernel[1]
        weights = op.filters * fan_in
        return weights + (op.filters if op.bias else 0), 0, fan_in * math.prod(output_shape)
    if op.op == "dense":
        weights = input_shape[0] * op.units
        return weights + (op.units if op.bias else 0), 0, weights
    if op.op == "batchnorm":
        return 2 * input_shape[0], 2 * input_shape[0], 0
    return 0, 0, 0


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
    known: dict[str, Shape] = {i.name: i.shape for i in graph.inputs}
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
        try:
            out = SHAPE_RULES[op.op](op, shapes)
        except ShapeError as exc:
            report.diagnostics.append(error(exc.code, op.span, _where(stmt, exc.message), exc.hint))
            return None, shaper
        if op.op == "flatten" and shapes[0][1:] == (1, 1) and shaper in WINDOWED:
            report.diagnostics.append(_collapsed(stmt, shapes[0], op.span))
        if len(shapes[0]) == 3 and out.shape[1:] != shapes[0][1:]:
            shaper = op.op
        for code, message, hint in out.warnings:
            report.diagnostics.append(warning(code, op.span, _where(stmt, message), hint))
        built = stmt.name in report.live
        trainable, frozen, macs = count(op, shapes[0], out.shape) if built else (0, 0, 0)
        if built:
            report.diagnostics.extend(
                _oversized(stmt, op, trainable + frozen, shapes[0], out.shape)
            )
        report.layers.append(
            Layer(
                f"{stmt.name}.{label}",
                stmt.name,
                op.op,
                shapes[0],
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
                _where(stmt, f"gives {_fmt(shape)}, but `expect` says {_fmt(stmt.expect)}"),
                f"fix the layers above or write `expect {_fmt(shape)}`",
            )
        )
    return shape, shaper


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
            f"the model's output `{graph.output}` is a {_fmt(shape)} map, not a vector of class "
            "scores: the generated trainers (cross-entropy over classes) cannot train it",
            "end with e.g. `global_avgpool |> flatten |> dense(N)`; without a `train` section "
            "the spec compiles as a feature extractor",
        )
    ]


def _collapsed(stmt: ir.Statement, shape: Shape, span: ir.Span) -> Diagnostic:
    """W104: flatten of a map that strided windows squeezed to C x 1 x 1."""
    return warning(
        "W104",
        span,
        f"{stmt.name}: the maps shrank to {_fmt(shape)} before flatten, "
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
            if op.op in ("conv", "dense", "concat", "add"):
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


def _fmt(shape) -> str:
    return " x ".join(str(d) for d in shape)


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
