"""PyTorch `model.py` from a checked graph: plain string building, no framework import."""

from __future__ import annotations

from dataclasses import dataclass

from archdsl.backends.block_plan import Plan, camel_case, plan, too_long
from archdsl.backends.pysource import (
    CONTRACT_NAMES,
    WIDTH,
    Call,
    Code,
    Pair,
    Plus,
    Seq,
    flat,
    literal,
    num,
    string,
    train_data,
    tup,
    variable_names,
    vocab_line,
)
from archdsl.backends.torch.block_classes import class_text, constructor
from archdsl.backends.torch.layout import items_block, layout, statement
from archdsl.backends.torch.nesting import attribute, containers
from archdsl.backends.torch.reshape_classes import RESHAPE_HELPERS
from archdsl.backends.torch.sequence import (
    HELPER_NAMES,
    embedding,
    helpers,
    init_lines,
    recurrent,
)
from archdsl.backends.torch.token_classes import TOKEN_HELPERS, TOKEN_INITS

from archdsl import ir
from archdsl.emit import EmitError
from archdsl.initializers import Distribution, layer_distributions
from archdsl.lowering import FRAMEWORK_MEMBERS
from archdsl.masking import masked_blocks, masks
from archdsl.naming import op_labels
from archdsl.ops import REGISTRY
from archdsl.ops.spec import features
from archdsl.shapes import Layer, Report, resolve_padding, trailing_softmax, window_out

SCHEDULES = {
    "on_plateau": "OnPlateau",
    "step": "StepDecay",
    "multistep": "MultiStep",
    "cosine": "Cosine",
}
# optimizer rules that torch.optim lacks: the runtime's optim.py has them
RUNTIME_OPTIMIZERS = {("sgd", "paper"): "PaperSGD", ("rmsprop", "tf"): "TFRMSprop"}
TORCH_OPTIMIZERS = {"sgd": "torch.optim.SGD", "rmsprop": "torch.optim.RMSprop"}
# the keyword arguments build_optimizer passes from TRAIN["optimizer"], after params and lr
SETTINGS = {
    "sgd": ("momentum", "weight_decay", "nesterov"),
    "rmsprop": ("alpha", "eps", "momentum", "weight_decay"),
}
OPTIMIZER_DOCS = {
    ("sgd", "paper"): "The paper's SGD: v <- mu*v - wd*lr*w - lr*g; w <- w + v.",
    ("sgd", "torch"): "torch.optim.SGD: b <- mu*b + g + wd*w; w <- w - lr*b.",
    ("rmsprop", "torch"): "torch.optim.RMSprop: b <- mu*b + g/(sqrt(v) + eps); w <- w - lr*b.",
    ("rmsprop", "tf"): "TensorFlow's RMSprop: b <- mu*b + lr*g/sqrt(v + eps); w <- w - b.",
}
# ops whose output is a new tensor that no backward pass needs: an in-place activation may follow
FRESH = {
    "conv",
    "dense",
    "batchnorm",
    "lrn",
    "maxpool",
    "avgpool",
    "global_avgpool",
    "adaptive_avgpool",
    "resize",
    "conv_transpose",
    "upsample",
}
METHOD = 8  # indentation of a method body
# layer classes model.py imports from the runtime copied beside it: class -> module
RUNTIME_LAYERS = {
    "FusedLRN": "lrn",
    "ShiftedWindowAttention": "shifted_windows",
    "SpaceToDepth": "shifted_windows",
}
# names at the top level of model.py, which the model's class must not shadow
MODULE_NAMES = CONTRACT_NAMES | {
    "OrderedDict",
    "torch",
    "nn",
    "PaperSGD",
    "TFRMSprop",
    "multi_tensor",
    "param_groups",
    "freeze_statements",
    "frozen_norms",
    *SCHEDULES.values(),
    "Resize",
    "PaddedAvgPool2d",
    "LayerNorm2d",
    "LayerScale",
    "StochasticDepth",
    "Chunk",
    *RUNTIME_LAYERS,
    *(name for name, _ in TOKEN_HELPERS),
    *HELPER_NAMES,
    *(name for name, _ in RESHAPE_HELPERS),
}

# the train block's `freeze`: the frozen statements' batch norms keep their statistics
FROZEN_TRAIN_METHOD = '''    def train(self, mode=True):
        """Set the training mode; the batch norms of the frozen statements stay in eval mode."""
        super().train(mode)
        for norm in frozen_norms(self, TRAIN["freeze"]):
            norm.eval()
        return self'''

RESIZE_CLASS = '''class Resize(nn.Module):
    """Resize to `size` with half-pixel centres and no antialiasing; nearest: output i reads
    input floor((i + 0.5) * n_in / n_out), in exact integer arithmetic (nearest-exact's float32
    can read the pixel before at an exact tie)."""

    def __init__(self, size, mode):
        super().__init__()
        self.size, self.mode = size, mode

    def forward(self, x):
        """x resized to self.size."""
        if self.mode == "bilinear":
            return nn.functional.interpolate(
                x, self.size, mode="bilinear", align_corners=False, antialias=False
            )
        for axis, size in zip((2, 3), self.size, strict=True):
            centres = 2 * torch.arange(size, device=x.device) + 1
            x = x.index_select(axis, centres * x.shape[axis] // (2 * size))
        return x
'''

PADDED_AVGPOOL_CLASS = '''class PaddedAvgPool2d(nn.Module):
    """Average pooling over explicit zero padding (left, right, top, bottom); only the `counted`
    part of the padding counts in the divisor."""

    def __init__(self, kernel_size, stride, padding, counted):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride
        self.padding, self.counted = padding, counted

    def forward(self, x):
        """Window sums over the padded input divided by the counted cells of each window."""
        ones = nn.functional.pad(torch.ones_like(x[:1, :1]), self.counted, value=1.0)
        rest = [p - c for p, c in zip(self.padding, self.counted, strict=True)]
        padded = nn.functional.pad(x, self.padding)
        counted = nn.functional.pad(ones, rest)
        return self.pool(padded) / self.pool(counted)

    def pool(self, x):
        """Plain average pooling with this layer's window."""
        return nn.functional.avg_pool2d(x, self.kernel_size, self.stride)
'''
LAYERNORM2D_CLASS = '''class LayerNorm2d(nn.LayerNorm):
    """Layer normalisation over the channels at each position of an (N, C, H, W) map
    (torchvision's LayerNorm2d): biased variance, eps inside the square root."""

    def forward(self, x):
        """Normalise each position's C values, then scale and shift them."""
        x = x.permute(0, 2, 3, 1)
        x = nn.functional.layer_norm(
            x, self.normalized_shape, self.weight, self.bias, self.eps
        )
        return x.permute(0, 3, 1, 2)
'''

LAYER_SCALE_CLASS = '''class LayerScale(nn.Module):
    """Each channel of a map (or feature of a vector) times a learned scale (ConvNeXt's
    layer_scale; a (C,) tensor where torchvision keeps a (C, 1, 1) one)."""

    def __init__(self, channels, init):
        """channels: how many scales; init: their starting value."""
        super().__init__()
        self.scale = nn.Parameter(torch.full((channels,), float(init)))

    def forward(self, x):
        """x times its channel's scale, broadcast over the positions of a map."""
        return x * self.scale.view(-1, *[1] * (x.dim() - 2))
'''

STOCHASTIC_DEPTH_CLASS = '''class StochasticDepth(nn.Module):
    """torchvision.ops.stochastic_depth(mode="row"): in training each example is zeroed with
    probability p and the survivors scaled by 1 / (1 - p); the identity in eval."""

    def __init__(self, p):
        """p: the probability of dropping an example's whole tensor."""
        super().__init__()
        self.p = p

    def forward(self, x):
        """x times a per-example mask of 0 or 1 / (1 - p) in training; x in eval."""
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        size = (x.shape[0],) + (1,) * (x.dim() - 1)
        noise = torch.empty(size, dtype=x.dtype, device=x.device).bernoulli_(survival)
        if survival > 0.0:
            noise.div_(survival)
        return x * noise
'''

CHUNK_CLASS = '''class Chunk(nn.Module):
    """The `part`-th of `chunks` equal slices of the channels, as torch.chunk along dim 1."""

    def __init__(self, chunks, part):
        """chunks: how many equal slices; part: which one, from 0."""
        super().__init__()
        self.chunks, self.part = chunks, part

    def forward(self, x):
        """x's channels part * C / chunks up to (part + 1) * C / chunks."""
        return x.chunk(self.chunks, dim=1)[self.part]
'''
HELPERS = (
    *TOKEN_HELPERS,
    ("Resize", RESIZE_CLASS),
    ("PaddedAvgPool2d", PADDED_AVGPOOL_CLASS),
    ("LayerNorm2d", LAYERNORM2D_CLASS),
    ("LayerScale", LAYER_SCALE_CLASS),
    ("StochasticDepth", STOCHASTIC_DEPTH_CLASS),
    ("Chunk", CHUNK_CLASS),
    *RESHAPE_HELPERS,
)


@dataclass(frozen=True)
class Entry:
    """One item of a statement's nn.Sequential: key, module expression, trailing comment."""

    key: str
    module: Code
    comment: str


@dataclass(frozen=True)
class Axis:
    """One spatial axis of a conv or pool: the spec's window and padding, and its output size."""

    size: int
    kernel: int
    stride: int
    dilation: int
    before: int
    after: int
    out: int

    def trailing(self) -> int:
        """Padding after the input that the last window reads (ceil-mode overhang included)."""
        extent = (self.out - 1) * self.stride + self.dilation * (self.kernel - 1) + 1
        return max(extent - self.size - self.before, 0)


@dataclass(frozen=True)
class Chain:
    """A statement as model.py computes it: an optional merge of its inputs, then a Sequential."""

    stmt: ir.Statement
    merge: str | None
    ops: list[tuple[object, Layer, str]]
    runs: str | None = None  # a top-level statement whose calls run as one module (`layer2`)
    mask: tuple[str, int] | None = None  # (token input, padding id): the mask its layers get


# ----------------------------------------------------------------------------- entry point


def render_model(graph: ir.Graph, report: Report, spec_name: str) -> str:
    """The text of model.py for a graph that checked without errors."""
    towers = tower_count(graph)
    if graph.name in MODULE_NAMES or towers > 1 and graph.name == "place":
        raise EmitError(
            f"model name `{graph.name}` would hide a name that model.py defines or imports; "
            "rename the model"
        )
    chains = _chains(graph, report)
    entries = {c.stmt.name: _entries(c) for c in chains}
    used = {e.module.func for es in entries.values() for e in es if isinstance(e.module, Call)}
    blocks, classes = _block_classes(graph, report, chains, towers)
    definitions = [
        *[text.rstrip("\n") for name, text in HELPERS if name in used],
        *helpers(used, any(c.mask for c in chains)),
        *classes,
        _model_class(graph, report, chains, entries, blocks),
        _functions(graph),
        *([_place(chains, entries, towers)] if towers > 1 else []),
    ]
    top = _header(graph, spec_name, used) + "\n\n" + _constants(graph, report, spec_name)
    return "\n\n\n".join([top, *definitions]) + "\n"


def _block_classes(
    graph: ir.Graph, report: Report, chains: list[Chain], towers: int
) -> tuple[Plan, list[str]]:
    """Which blocks run as classes, and their definitions; a block whose class would need a
    line longer than ruff's is run statement by statement instead, as are a towered model's."""
    if towers > 1:
        return Plan({}, {}, {}, {}), []
    by_name = {c.stmt.name: c for c in chains}
    facts = {c.stmt.name: (c.merge, bool(c.ops)) for c in chains}
    taken = MODULE_NAMES | {graph.name}
    forms = {b.name: b for b in graph.blocks}
    excluded = masked_blocks(report)
    while True:
        blocks = plan(graph, facts, camel_case, taken, FRAMEWORK_MEMBERS, excluded)
        texts = {b: class_text(blocks, forms[b], by_name, _merge) for b in blocks.units}
        long = {b for b, text in texts.items() if too_long(text, WIDTH)}
        if not long:
            return blocks, list(texts.values())
        excluded |= long


def _merge(merge: str, args: tuple[Code, ...]) -> Code:
    """A merge of named inputs (MERGED), for a block class's forward."""
    return MERGED[merge](args)


# ----------------------------------------------------------------------------- header, constants


def _header(graph: ir.Graph, spec_name: str, used: set[str]) -> str:
    """The comment naming the source, the module docstring and the imports."""
    shown = spec_name if spec_name.isprintable() else ascii(spec_name)
    lines = [
        f"# Generated by archdsl from {shown}: edit the spec, not this file.",
        f'"""{graph.name} in PyTorch: network, initialisation, optimizer, schedule."""',
        "",
        "from collections import OrderedDict",
        "",
        "import torch",
        "from torch import nn",
    ]
    runtime = sorted(_runtime_imports(graph.train) + _runtime_layers(used))  # isort's order
    if runtime:
        # isort calls the runtime first- or third-party depending on where it runs: keep it apart
        lines += ["", "# The archdsl runtime, copied beside this file:", "# isort: split", *runtime]
    return "\n".join(lines)


def _runtime_layers(used: set[str]) -> list[str]:
    """`from MODULE import CLASS, ...` for the runtime's layer classes the model uses."""
    modules: dict[str, list[str]] = {}
    for cls, module in RUNTIME_LAYERS.items():
        if cls in used:
            modules.setdefault(module, []).append(cls)
    return [f"from {module} import {', '.join(names)}" for module, names in modules.items()]


def _runtime_imports(train: ir.Train) -> list[str]:
    """`from optim import ...` and `from schedules import ...`, as the recipe needs them."""
    lines = []
    opt = train.optimizer
    optim = [RUNTIME_OPTIMIZERS[(opt.name, opt.rule)] if _runtime_rule(opt) else "multi_tensor"]
    optim += ["freeze_statements", "frozen_norms"] if train.freeze else []
    optim += ["param_groups"] if _grouped(train) else []
    if optim:
        lines.append(f"from optim import {', '.join(sorted(optim))}")  # isort's order
    if train.schedule.name in SCHEDULES:
        lines.append(f"from schedules import {SCHEDULES[train.schedule.name]}")
    # portable weights (archdsl weights): re-exported as the model's own save/load functions
    lines.append("from weights import load_weights, save_weights  # noqa: F401")
    return lines


def _constants(graph: ir.Graph, report: Report, spec_name: str) -> str:
    """MODEL_NAME, SPEC, INPUT_SHAPE, OUTPUT_SHAPE, NUM_CLASSES and TRAIN."""
    out_shape = report.outputs[graph.output]
    lines = [
        statement(string(graph.name), 0, "MODEL_NAME = "),
        statement(string(spec_name), 0, "SPEC = "),
        statement(Seq("()", tuple(num(d) for d in graph.inputs[0].shape)), 0, "INPUT_SHAPE = "),
        statement(Seq("()", tuple(num(d) for d in out_shape)), 0, "OUTPUT_SHAPE = "),
        f"NUM_CLASSES = {num(out_shape[0])}",
        *vocab_line(graph),
        statement(literal(train_data(graph.train)), 0, "TRAIN = "),
    ]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- statements


def _chains(graph: ir.Graph, report: Report) -> list[Chain]:
    """Every statement the model builds (those reaching the output), in dependency order, split
    into merge and module chain."""
    layers = report.by_statement()
    received = masks(report)
    chains = []
    for stmt in report.order:
        if stmt.name not in report.live:
            continue
        ops = list(zip(stmt.ops, layers[stmt.name], op_labels(stmt), strict=True))
        merge = ops.pop(0)[0].op if ops and ops[0][0].op in MERGED else None
        if stmt.name == graph.output and trailing_softmax(graph):
            ops.pop()
        chains.append(Chain(stmt, merge, ops, mask=_mask_source(stmt, ops, received)))
    return chains


def _mask_source(stmt: ir.Statement, ops: list, received: dict) -> tuple[str, int] | None:
    """(token input, padding id) of the mask the statement's layers receive, or None."""
    sources = {received.get(layer.name) for op, layer, label in ops if REGISTRY[op.op].masked}
    if not sources - {None}:
        return None
    if len(sources) > 1:
        raise EmitError(
            f"statement `{stmt.name}` has layers with and without a padding mask: "
            "split it where the sequence changes length"
        )
    return sources.pop()


def _entries(chain: Chain) -> list[Entry]:
    """The Sequential items of a statement, an explicit padding before a window that needs one."""
    entries = []
    fresh = chain.merge == "concat" or len(chain.stmt.inputs) > 1
    for op, layer, label in chain.ops:
        entries += EMIT[op.op](op, layer, label, fresh)
        fresh = op.op in FRESH
    return entries


def _shape(layer: Layer) -> str:
    return _dims(layer.output_shape)


def _comment(op, layer: Layer) -> str:
    """The output shape; for LRN also why alpha is scaled."""
    if op.op == "lrn":
        return f"{_shape(layer)}; alpha {num(op.alpha)} * size: torch divides it by size"
    return _shape(layer)


def _dims(shape) -> str:
    return " x ".join(str(d) for d in shape)


def _pair(values: tuple[int, int]) -> str:
    """A kernel, stride or padding: one number when both axes agree."""
    return num(values[0]) if values[0] == values[1] else f"({num(values[0])}, {num(values[1])})"


def _module(build):
    """An op emitted as one module: `build(op, layer, fresh)` gives its constructor call."""

    def entries(op, layer: Layer, label: str, fresh: bool) -> list[Entry]:
        return [Entry(label, build(op, layer, fresh), _comment(op, layer))]

    return entries


def _call(func: str, *args: Code):
    """A module whose constructor does not depend on the op."""
    return _module(lambda op, layer, fresh: Call(func, args))


def _in_place(func: str):
    """An activation that runs in place on a fresh tensor (one no backward pass needs)."""
    return _module(lambda op, layer, fresh: Call(func, (Pair("inplace", "True"),) if fresh else ()))


def _leaky_relu(op: ir.LeakyRelu, layer: Layer, fresh: bool) -> Call:
    slope = Pair("negative_slope", num(op.slope))
    return Call("nn.LeakyReLU", (slope, Pair("inplace", "True")) if fresh else (slope,))


def _lrn(op: ir.LRN, layer: Layer, fresh: bool) -> Call:
    """The runtime's FusedLRN (nn.LocalResponseNorm's arguments, in fewer kernels): torch
    divides alpha by size; the IR's alpha is the paper's."""
    alpha = Pair("alpha", num(op.alpha * op.size))
    channels = Pair("channels", num(layer.input_shape[0]))
    return Call("FusedLRN", (num(op.size), alpha, *_kws(op, "beta", "k"), channels))


def _batchnorm(op: ir.BatchNorm, layer: Layer, fresh: bool) -> Call:
    rank = "2d" if len(layer.input_shape) == 3 else "1d"
    return Call(f"nn.BatchNorm{rank}", (num(layer.input_shape[0]), *_kws(op, "eps", "momentum")))


def _layernorm(op: ir.LayerNorm, layer: Layer, fresh: bool) -> Call:
    """LayerNorm2d over the channels of a map, nn.LayerNorm over a vector's features."""
    cls = "LayerNorm2d" if len(layer.input_shape) == 3 else "nn.LayerNorm"
    return Call(cls, (num(features(layer.input_shape)), *_kws(op, "eps")))


def _gelu(op: ir.Gelu, layer: Layer, fresh: bool) -> Call:
    """nn.GELU: erf form, or the tanh approximation."""
    return Call(
        "nn.GELU", (Pair("approximate", string("tanh")),) if op.approximate == "tanh" else ()
    )


def _linear(op: ir.Dense, layer: Layer, fresh: bool) -> Call:
    bias = () if op.bias else (Pair("bias", "False"),)
    return Call("nn.Linear", (num(layer.input_shape[-1]), num(op.units), *bias))


def _attention(op, layer: Layer, fresh: bool) -> Call:
    """The helper SelfAttention (nn.MultiheadAttention's tensors, scaled_dot_product_attention)."""
    options = (Pair("dropout", num(op.dropout)),) if op.dropout else ()
    options += () if op.bias else (Pair("bias", "False"),)
    return Call("SelfAttention", (num(layer.input_shape[1]), num(op.heads), *options))


def _window_attention(op: ir.WindowAttention, layer: Layer, fresh: bool) -> Call:
    """The runtime's ShiftedWindowAttention for maps of the layer's input size."""
    options = _kws(op, "heads", "window", "shift")
    return Call(
        "ShiftedWindowAttention",
        (num(layer.input_shape[0]), *options, Pair("size", tup(layer.input_shape[1:]))),
    )


def _kws(op, *names: str) -> tuple[Pair, ...]:
    return tuple(Pair(n, num(getattr(op, n))) for n in names)


# ----------------------------------------------------------------------------- windows


def _axes(op, layer: Layer) -> tuple[Axis, Axis]:
    """The H and W axes of a conv or pool with the spec's padding resolved on its input."""

    def axis(a: int) -> Axis:
        size, k, s = layer.input_shape[1 + a], op.kernel[a], op.stride[a]
        d = getattr(op, "dilation", (1, 1))[a]
        pad = op.pad if isinstance(op.pad, str) else op.pad[a]
        return Axis(size, k, s, d, *resolve_padding(pad, size, k, s, d), layer.output_shape[1 + a])

    return axis(0), axis(1)


def _native(op, axes: tuple[Axis, Axis]) -> tuple[int, int] | None:
    """The (h, w) padding with which torch's own layer computes the spec's windows, or None.

    torch pads both sides alike and rounds conv sizes down (pools round up as `window_out` does
    in ceil mode; the front end keeps pool padding within torch's half a kernel).
    """
    pool = op.op != "conv"
    for ax in axes:
        if ax.after != ax.before:
            return None
        out = window_out(
            ax.size, ax.kernel, ax.stride, ax.before, ax.after, ax.dilation, op.ceil and pool, pool
        )
        if out != ax.out:
            return None
    return (axes[0].before, axes[1].before)


def _windowed(op, layer: Layer, label: str) -> list[Entry]:
    """A conv or pool: torch's own padding where it is exact, else explicit padding before it."""
    axes = _axes(op, layer)
    native = _native(op, axes)
    shape = _shape(layer)
    if native is not None:
        return [Entry(label, _window_module(op, layer, native), shape)]
    h, w = axes
    pads = (w.before, w.trailing(), h.before, h.trailing())
    if op.op == "avgpool":
        counted = (w.before, min(w.after, pads[1]), h.before, min(h.after, pads[3]))
        return [
            Entry(label, _padded_avgpool(op, pads, counted if op.count_pad else (0,) * 4), shape)
        ]
    padded = _dims((layer.input_shape[0], h.size + pads[2] + pads[3], w.size + pads[0] + pads[1]))
    pad_args = (Seq("()", tuple(num(p) for p in pads)),)
    pad = (
        Call("nn.ZeroPad2d", pad_args)
        if op.op == "conv"
        else Call("nn.ConstantPad2d", (*pad_args, 'float("-inf")'))
    )
    unpadded = op.model_copy(update={"ceil": False})
    return [
        Entry(f"{label}_pad", pad, padded),
        Entry(label, _window_module(unpadded, layer, (0, 0)), shape),
    ]


def _window_module(op, layer: Layer, padding: tuple[int, int]) -> Call:
    """nn.Conv2d, nn.MaxPool2d or nn.AvgPool2d with symmetric `padding`."""
    kernel = Pair("kernel_size", _pair(op.kernel))
    options = []
    if op.op != "conv" or op.stride != (1, 1):
        options.append(Pair("stride", _pair(op.stride)))
    if padding != (0, 0):
        options.append(Pair("padding", _pair(padding)))
    if op.op == "conv":
        options += _conv_options(op)
        return Call("nn.Conv2d", (num(layer.input_shape[0]), num(op.filters), kernel, *options))
    if op.ceil:
        options.append(Pair("ceil_mode", "True"))
    if op.op == "maxpool":
        return Call("nn.MaxPool2d", (kernel, *options))
    if not op.count_pad:
        options.append(Pair("count_include_pad", "False"))
    return Call("nn.AvgPool2d", (kernel, *options))


def _conv_options(op: ir.Conv) -> list[Pair]:
    """dilation, groups and bias where they differ from nn.Conv2d's defaults."""
    options = []
    if op.dilation != (1, 1):
        options.append(Pair("dilation", _pair(op.dilation)))
    if op.groups != 1:
        options.append(Pair("groups", num(op.groups)))
    if not op.bias:
        options.append(Pair("bias", "False"))
    return options


def _conv_transpose(op: ir.ConvTranspose, layer: Layer, fresh: bool) -> Call:
    """nn.ConvTranspose2d, its options where they differ from the defaults."""
    values = {
        "stride": (op.stride, (1, 1)),
        "padding": (op.pad, (0, 0)),
        "output_padding": (op.output_pad, (0, 0)),
        "dilation": (op.dilation, (1, 1)),
    }
    options = [Pair(k, _pair(v)) for k, (v, default) in values.items() if v != default]
    if op.groups != 1:
        options.append(Pair("groups", num(op.groups)))
    if not op.bias:
        options.append(Pair("bias", "False"))
    channels = (num(layer.input_shape[0]), num(op.filters))
    return Call("nn.ConvTranspose2d", (*channels, Pair("kernel_size", _pair(op.kernel)), *options))


def _upsample(op: ir.Upsample, layer: Layer, fresh: bool) -> Call:
    """nn.Upsample for bilinear; nearest reads input floor(i / scale) through the exact Resize
    (nn.Upsample's nearest multiplies by a float32 1 / scale, which reads the pixel before at
    some multiples of the scale, e.g. 41)."""
    if op.mode == "nearest":
        return Call("Resize", (tup(layer.output_shape[1:]), Pair("mode", string("nearest"))))
    scale = Pair("scale_factor", _pair(op.scale))
    corners = Pair("align_corners", repr(op.align_corners))
    return Call("nn.Upsample", (scale, Pair("mode", string("bilinear")), corners))


def _padded_avgpool(op: ir.AvgPool, pads: tuple[int, ...], counted: tuple[int, ...]) -> Call:
    """The helper module for an average pool that torch's own cannot express."""
    return Call(
        "PaddedAvgPool2d",
        (
            Pair("kernel_size", _pair(op.kernel)),
            Pair("stride", _pair(op.stride)),
            Pair("padding", Seq("()", tuple(num(p) for p in pads))),
            Pair("counted", Seq("()", tuple(num(c) for c in counted))),
        ),
    )


# ----------------------------------------------------------------------------- dispatch

# op -> its Sequential entries (op, layer, label, fresh): one entry per op of the language
# but the merges, which _merged writes (MERGED); tests/unit/test_op_registry.py checks both
EMIT = {
    "conv": lambda op, layer, label, fresh: _windowed(op, layer, label),
    "maxpool": lambda op, layer, label, fresh: _windowed(op, layer, label),
    "avgpool": lambda op, layer, label, fresh: _windowed(op, layer, label),
    "global_avgpool": _call("nn.AdaptiveAvgPool2d", "1"),
    "adaptive_avgpool": _module(
        lambda op, layer, fresh: Call("nn.AdaptiveAvgPool2d", (_pair(op.size),))
    ),
    "lrn": _module(_lrn),
    "batchnorm": _module(_batchnorm),
    "relu": _in_place("nn.ReLU"),
    "relu6": _in_place("nn.ReLU6"),
    "tanh": _call("nn.Tanh"),
    "sigmoid": _call("nn.Sigmoid"),
    "silu": _in_place("nn.SiLU"),
    "hardswish": _in_place("nn.Hardswish"),
    "hardsigmoid": _in_place("nn.Hardsigmoid"),
    "mish": _in_place("nn.Mish"),
    "leaky_relu": _module(_leaky_relu),
    "gelu": _module(_gelu),
    "softmax": _call("nn.Softmax", Pair("dim", "1")),
    "dropout": _module(lambda op, layer, fresh: Call("nn.Dropout", (num(op.p),))),
    "stochastic_depth": _module(lambda op, layer, fresh: Call("StochasticDepth", (num(op.p),))),
    "layernorm": _module(_layernorm),
    "layer_scale": _module(
        lambda op, layer, fresh: Call("LayerScale", (num(layer.input_shape[0]), num(op.init)))
    ),
    "flatten": _call("nn.Flatten"),
    "resize": _module(
        lambda op, layer, fresh: Call("Resize", (tup(op.size), Pair("mode", string(op.mode))))
    ),
    "dense": _module(_linear),
    "conv_transpose": _module(_conv_transpose),
    "upsample": _module(_upsample),
    "chunk": _module(lambda op, layer, fresh: Call("Chunk", (num(op.chunks), num(op.part)))),
    "channel_shuffle": _module(
        lambda op, layer, fresh: Call("nn.ChannelShuffle", (num(op.groups),))
    ),
    "window_attention": _module(_window_attention),
    "space_to_depth": _module(
        lambda op, layer, fresh: Call(
            "SpaceToDepth", (num(op.block), Pair("size", tup(layer.input_shape[1:])))
        )
    ),
    "to_tokens": _call("ToTokens"),
    "to_map": _module(lambda op, layer, fresh: Call("ToMap", (num(op.height), num(op.width)))),
    "token": _module(lambda op, layer, fresh: Call("SelectToken", (num(op.index),))),
    "mean_tokens": _call("MeanTokens"),
    "class_token": _module(
        lambda op, layer, fresh: Call("ClassToken", (num(layer.input_shape[1]),))
    ),
    "position_embedding": _module(
        lambda op, layer, fresh: Call("PositionEmbedding", tuple(map(num, layer.input_shape)))
    ),
    "attention": _module(_attention),
    "embedding": _module(embedding),
    "lstm": _module(recurrent),
    "gru": _module(recurrent),
    "reshape": _module(lambda op, layer, fresh: Call("Reshape", (tup(layer.output_shape),))),
    "permute": _module(lambda op, layer, fresh: Call("Permute", (tup(op.axes),))),
}


# ----------------------------------------------------------------------------- the nn.Module


def _model_class(
    graph: ir.Graph,
    report: Report,
    chains: list[Chain],
    entries: dict[str, list[Entry]],
    blocks: Plan,
) -> str:
    """The nn.Module: layers in __init__, the spec's initialisation, forward."""
    out_shape = report.outputs[graph.output]
    inputs = ", ".join(f"(N, {', '.join(map(str, i.shape))})" for i in graph.inputs)
    what = "logits" if trailing_softmax(graph) else "outputs"
    lines = [
        _class_line(graph.name),
        f'    """{graph.name}: maps {inputs} inputs to (N, {_dims(out_shape).replace(" x ", ", ")}) '
        f'{what}."""',
        "",
        "    def __init__(self):",
        "        super().__init__()",
    ]
    if tower_count(graph) > 1:
        lines.append("        self._tower_devices = None  # a device per tower, set by place()")
    built = [c.stmt.name for c in chains if entries[c.stmt.name]]
    made = containers(
        built, lambda path: constructor(blocks, path) if path in blocks.calls else None
    )
    masked = {c.stmt.name for c in chains if c.mask}
    for name in built:
        lines += [statement(new, METHOD, f"{attribute(c)} = ") for c, new in made[name]]
        lines += _sequential(name, entries[name], name in masked)
    lines += ["        self.reset_parameters()", "", *_reset_parameters(chains), ""]
    lines += _forward(graph, _steps(chains, blocks))
    if graph.train.freeze:
        lines += ["", *FROZEN_TRAIN_METHOD.splitlines()]
    if tower_count(graph) > 1:
        lines += ["", *TO_TOWER_METHOD.splitlines()]
    return "\n".join(lines)


def _class_line(name: str) -> str:
    """`class NAME(nn.Module):`, its base on a line of its own when the name is very long."""
    line = f"class {name}(nn.Module):"
    return line if len(line) <= WIDTH else f"class {name}(\n    nn.Module\n):"


def _sequential(name: str, entries: list[Entry], masked: bool = False) -> list[str]:
    """`self.NAME = nn.Sequential(OrderedDict(key=module, ...))`, one line per op
    (MaskedSequential where its layers receive a padding mask)."""
    if not entries:
        return []
    items = [(Pair(e.key, e.module), e.comment) for e in entries]
    head = f"{' ' * METHOD}{attribute(name)} = "
    container = "MaskedSequential(" if masked else "nn.Sequential("
    if len(head) + len(container) <= WIDTH or len(head) + 1 > WIDTH:
        return [
            head + container,
            *items_block("OrderedDict", items, METHOD + 4),
            " " * METHOD + ")",
        ]
    inner = " " * (METHOD + 4)  # ruff's parentheses around a right-hand side it cannot open
    return [
        head + "(",
        inner + container,
        *items_block("OrderedDict", items, METHOD + 8),
        inner + ")",
        " " * METHOD + ")",
    ]


def _reset_parameters(chains: list[Chain]) -> list[str]:
    """reset_parameters(): every learned tensor drawn as the spec says, in layer order."""
    lines = [
        "    def reset_parameters(self):",
        '        """Initialise every layer as the spec says."""',
    ]
    for chain in chains:
        for op, layer, label in chain.ops:
            path = f"{attribute(chain.stmt.name)}.{label}"
            if REGISTRY[op.op].learned:
                weight, bias = layer_distributions(op, layer.input_shape)
                rules = _rules(weight, bias)
                lines.append(f"        # {layer.name}: {rules}")
                lines.append(_init_line(f"{path}.weight", weight))
                if bias is not None:
                    lines.append(_init_line(f"{path}.bias", bias))
            elif op.op in ("batchnorm", "layernorm"):
                lines.append(statement(Call("nn.init.ones_", (f"{path}.weight",)), METHOD))
                lines.append(statement(Call("nn.init.zeros_", (f"{path}.bias",)), METHOD))
            elif op.op == "window_attention":
                lines.append(statement(Call(f"{path}.reset_parameters", ()), METHOD))
            elif op.op in ("embedding", "lstm", "gru"):
                lines += init_lines(op, path, METHOD)
            elif op.op == "layer_scale":
                lines.append(
                    statement(Call("nn.init.constant_", (f"{path}.scale", num(op.init))), METHOD)
                )
            elif op.op in TOKEN_INITS:
                rule, inits = TOKEN_INITS[op.op](op, layer)
                lines.append(f"        # {layer.name}: {rule}")
                lines += [_init_line(f"{path}.{tensor}", dist) for tensor, dist in inits]
    return lines


def _rules(weight: Distribution, bias: Distribution | None) -> str:
    """The comment over a layer's init calls: the spec's rules with the fans they used."""
    if bias is None:
        return f"weight {weight.rule}"
    if bias.rule == weight.rule:
        return f"weight and bias {weight.rule}"
    return f"weight {weight.rule}; bias {bias.rule}"


def _init_line(target: str, dist: Distribution) -> str:
    """One nn.init call with the distribution's numbers."""
    if dist.kind == "normal":
        call = Call(
            "nn.init.normal_", (target, Pair("mean", num(dist.a)), Pair("std", num(dist.b)))
        )
    elif dist.kind == "trunc_normal":
        low, high = dist.bounds
        args = (Pair("mean", num(dist.a)), Pair("std", num(dist.b)))
        bounds = (Pair("a", num(low)), Pair("b", num(high)))
        call = Call("nn.init.trunc_normal_", (target, *args, *bounds))
    elif dist.kind == "uniform":
        call = Call("nn.init.uniform_", (target, Pair("a", num(dist.a)), Pair("b", num(dist.b))))
    elif dist.kind == "constant":
        call = Call("nn.init.constant_", (target, num(dist.a)))
    else:
        raise ValueError(f"no PyTorch initialiser for a {dist.kind} distribution")
    return statement(call, METHOD)


# ----------------------------------------------------------------------------- forward


def _steps(chains: list[Chain], blocks: Plan) -> list[Chain]:
    """The chains forward runs: those of a top-level statement whose calls run as one module
    replaced by one chain calling it, where the first of them stood."""
    steps, called = [], set()
    for chain in chains:
        top = chain.stmt.name.split(".")[0]
        if top not in blocks.groups:
            steps.append(chain)
        elif top not in called:
            called.add(top)
            source, output = blocks.groups[top]
            stmt = chain.stmt.model_copy(update={"name": output, "inputs": (source,)})
            steps.append(Chain(stmt, None, [], runs=top))
    return steps


def _forward(graph: ir.Graph, chains: list[Chain]) -> list[str]:
    """forward(): the statements in dependency order, each tensor kept while it is read."""
    names, chained = _variables(graph, chains)
    devices = _placement(graph) if tower_count(graph) > 1 else {}
    copies = _copies(chains, names, devices)
    reads = [_reads(chain, names, devices, copies) for chain in chains]
    last_read = {v: i for i, variables in enumerate(reads) for v in variables}
    points = _copy_points(graph, chains, copies, reads)
    params = ", ".join(names[i.name] for i in graph.inputs)
    lines = [
        f"    def forward(self, {params}):",
        f'        """{"Logits" if trailing_softmax(graph) else "Outputs"} for a batch of inputs."""',
    ]
    mask_names = _mask_variables(graph, chains, names)
    lines += [
        f"{' ' * METHOD}{mask} = real_tokens({names[source]}, {padding})"
        for source, (mask, padding) in mask_names.items()
    ]
    for i, chain in enumerate(chains):
        moved = points.get(i, [])
        lines += [_copy_line(copies[move], names[move[0]], move[1]) for move in moved]
        left = [names[n] for n, _ in moved if last_read.get(names[n], -1) < i]
        if left := [v for v in dict.fromkeys(left) if v != chained]:
            lines.append(_del(left))  # read on other devices only: copied, not kept
        expr = _merged(chain, reads[i])
        if chain.runs:
            expr = Call(attribute(chain.runs), (expr,))
        elif chain.ops:
            mask = (mask_names[chain.mask[0]][0],) if chain.mask else ()
            expr = Call(attribute(chain.stmt.name), (expr, *mask))
        if chain.stmt.name == graph.output:
            lines.append(statement(expr, METHOD, "return "))
            continue
        lines.append(statement(expr, METHOD, f"{names[chain.stmt.name]} = "))
        read = dict.fromkeys(reads[i])
        done = [v for v in read if last_read[v] == i and v != chained]
        if done:
            lines.append(_del(done))
    return lines


def _mask_variables(graph: ir.Graph, chains: list[Chain], names: dict) -> dict:
    """{token input: (its mask's variable, padding id)} for the masks forward computes."""
    found = dict.fromkeys(c.mask for c in chains if c.mask)
    sources = [source for source, padding in found]
    if len(set(sources)) < len(sources):
        raise EmitError("the embeddings of one token input use different padding ids")
    taken, spelt = set(names.values()), {}
    for source, padding in found:
        variable = f"{names[source]}_mask"
        while variable in taken:
            variable += "_"
        taken.add(variable)
        spelt[source] = (variable, padding)
    return spelt


def _del(names: list[str]) -> str:
    """`del a, b` for tensors no later statement reads; parenthesised when too long."""
    line = f"{' ' * METHOD}del {', '.join(names)}"
    return line if len(line) <= WIDTH else statement(Seq("()", tuple(names)), METHOD, "del ")


def _variables(graph: ir.Graph, chains: list[Chain]) -> tuple[dict[str, str], str]:
    """The local holding each value (one chain variable along plain chains, else the name as
    pysource.variable_names spells it), and that chain variable."""
    keys = [i.name for i in graph.inputs] + [c.stmt.name for c in chains]
    hints = [i.name for i in graph.inputs] + [c.runs or c.stmt.name for c in chains]
    spelt = variable_names(hints, {"self"})  # a call group is named by its statement
    names = {key: spelt[hint] for key, hint in zip(keys, hints, strict=True)}
    chained = "x"
    while chained in names.values():
        chained += "_"
    readers: dict[str, list[int]] = {}
    for i, chain in enumerate(chains):
        for name in dict.fromkeys(chain.stmt.inputs):
            readers.setdefault(name, []).append(i)
    producers = [(-1, i.name) for i in graph.inputs] + [
        (i, c.stmt.name) for i, c in enumerate(chains)
    ]
    for i, name in producers:
        if readers.get(name) == [i + 1] and len(chains[i + 1].stmt.inputs) == 1:
            names[name] = chained
    return names, chained


def _merged(chain: Chain, args: list[str]) -> Code:
    """What a statement's Sequential receives: its input, or the concat or sum of its inputs
    (args: the variables holding them)."""
    return MERGED[chain.merge](tuple(args)) if chain.merge else args[0]


# merge op -> the expression joining its inputs (the statement's Sequential then reads it)
MERGED = {
    "concat": lambda args: Call("torch.cat", (Seq("[]", args), Pair("dim", "1"))),
    "add": lambda args: Plus(tuple(flat(a) for a in args)),
    "mul": lambda args: Plus(tuple(flat(a) for a in args), "*"),  # broadcasts as torch does
}


# ----------------------------------------------------------------------------- towers

TO_TOWER_METHOD = '''    def _to_tower(self, x, tower):
        """x on the device of `tower` (tower 0's is also that of everything outside the
        towers) once place() has split the model; before that x itself."""
        if self._tower_devices is None:
            return x
        return x.to(self._tower_devices[tower])'''


def _copies(
    chains: list[Chain], names: dict[str, str], devices: dict[str, int]
) -> dict[tuple[str, int], str]:
    """{(value, device): the variable of its copy there} for each value that a statement on
    another device reads (none without towers)."""
    taken, copies = set(names.values()), {}
    for chain in chains:
        here = devices.get(chain.stmt.name, 0)
        for name in chain.stmt.inputs:
            if devices.get(name, 0) != here and (name, here) not in copies:
                variable = f"{names[name]}_on{here}"
                while variable in taken:
                    variable += "_"
                taken.add(variable)
                copies[name, here] = variable
    return copies


def _reads(chain: Chain, names: dict, devices: dict, copies: dict) -> list[str]:
    """The variables a statement reads: each input, or its copy on the statement's device."""
    here = devices.get(chain.stmt.name, 0)
    return [copies.get((name, here), names[name]) for name in chain.stmt.inputs]


def _row(stmt: ir.Statement) -> tuple[str, bool]:
    """(the statement a tower's statement is an instance of, True): (conv2, True) for
    conv2_t1; (its name, False) outside the towers (`conv2` there: the towers' join)."""
    if stmt.tower is None:
        return stmt.name, False
    return stmt.name.removesuffix(f"_t{stmt.tower}"), True


def _copy_points(
    graph: ir.Graph, chains: list[Chain], copies: dict, reads: list[list[str]]
) -> dict[int, list[tuple[str, int]]]:
    """{chain index: the copies made just before it}. A copy between devices makes each
    device's queue wait for the other's work queued so far, so a value is copied right after
    the row of towers that makes it (the batch: before the first statement), before any
    statement of the next row is queued: no device waits longer than the data requires."""
    producer = {i.name: -1 for i in graph.inputs} | {c.stmt.name: k for k, c in enumerate(chains)}
    rows = [_row(c.stmt) for c in chains]
    points: dict[int, list[tuple[str, int]]] = {}
    for (name, device), variable in copies.items():
        at = producer[name] + 1
        while 0 < at < len(chains) and rows[at] == rows[at - 1]:
            at += 1
        first_read = next(i for i, variables in enumerate(reads) if variable in variables)
        points.setdefault(min(at, first_read), []).append((name, device))
    return points


def _copy_line(variable: str, source: str, device: int) -> str:
    """`variable = self._to_tower(source, device)`."""
    return statement(Call("self._to_tower", (source, str(device))), METHOD, f"{variable} = ")


def tower_count(graph: ir.Graph) -> int:
    """The number of towers of the widest `towers N { }` block (1: the spec has none)."""
    return max((s.towers for s in graph.statements if s.tower is not None), default=1)


def _placement(graph: ir.Graph) -> dict[str, int]:
    """Where place() puts each statement: its tower, or 0 (devices[0]) outside the towers."""
    return {s.name: s.tower or 0 for s in graph.statements}


def _place(chains: list[Chain], entries: dict[str, list[Entry]], towers: int) -> str:
    """place(model, devices): the towers' layers on their devices, the rest on devices[0]."""
    lines = [
        "def place(model, devices):",
        '    """Model parallel: tower t on devices[t % len(devices)], the rest on devices[0].',
        "",
        '    devices: e.g. ["cuda:0", "cuda:1"] or ["cpu", "cpu"]. forward then copies a tensor',
        "    only where a statement reads one placed on another device (the input of the",
        "    towers, `merge`, the join after them); the output is on devices[0]. Returns model.",
        '    """',
        "    if not devices:",
        '        raise ValueError("place() needs at least one device")',
        "    devices = [torch.device(d) for d in devices]",
        statement(
            f"[devices[t % len(devices)] for t in range({towers})]", 4, "model._tower_devices = "
        ),
        "    model.to(devices[0])",
    ]
    for tower in range(1, towers):
        names = tuple(
            string(c.stmt.name) for c in chains if c.stmt.tower == tower and entries[c.stmt.name]
        )
        if names:
            head = "    for name in "
            lines.append(head + layout(Seq("()", names), 4, len(head), 1) + ":")
            lines.append(f"        model.get_submodule(name).to(model._tower_devices[{tower}])")
    lines.append("    return model")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- functions


def _functions(graph: ir.Graph) -> str:
    """build_model, predict, build_optimizer and build_scheduler."""
    model: Code = Call(graph.name)
    doc = f"A freshly initialised {graph.name}."
    if graph.train.freeze:
        model = Call("freeze_statements", (model, 'TRAIN["freeze"]'))
        doc = doc[:-1] + ", the statements of `freeze` without gradients."
    return "\n\n\n".join(
        [
            f'def build_model():\n    """{doc}"""\n' + statement(model, 4, "return "),
            _predict(trailing_softmax(graph)),
            _build_optimizer(graph.train),
            _build_scheduler(graph.train.schedule),
        ]
    )


def _predict(softmax: bool) -> str:
    """predict(model, x) in eval mode without gradients; the trailing softmax if the spec has one."""
    if softmax:
        doc, result = "Class probabilities (the trailing softmax)", "torch.softmax(model(x), dim=1)"
    else:
        doc, result = "Outputs (the spec ends without softmax)", "model(x)"
    return "\n".join(
        [
            "def predict(model, x):",
            f'    """{doc}, in eval mode without gradients."""',
            "    training = model.training",
            "    model.eval()",
            "    with torch.no_grad():",
            f"        out = {result}",
            "    model.train(training)",
            "    return out",
        ]
    )


def _runtime_rule(opt) -> bool:
    """Whether the optimizer's rule is the runtime's (not one of torch.optim's)."""
    return (opt.name, getattr(opt, "rule", None)) in RUNTIME_OPTIMIZERS


def _grouped(train: ir.Train) -> bool:
    """Whether the optimizer takes param_groups (no_decay, frozen or rate-scaled parameters)."""
    return bool(train.optimizer.no_decay or train.freeze or train.lr_scale)


def _params(train: ir.Train) -> Code:
    """The optimizer's parameters: all, or the trainable ones in param_groups."""
    if not _grouped(train):
        return "model.parameters()"
    args = ["model", 'opt["weight_decay"]']
    if train.optimizer.no_decay or train.lr_scale:
        args.append('opt["no_decay"]')
    if train.lr_scale:
        args += ["lr", 'TRAIN["lr_scale"]']
    return Call("param_groups", tuple(args))


def _build_optimizer(train: ir.Train) -> str:
    """build_optimizer(model, lr=None) reading TRAIN["optimizer"]."""
    opt, params = train.optimizer, _params(train)
    lr = Pair("lr", "lr" if train.lr_scale else 'opt["lr"] if lr is None else lr')
    decay = Pair("weight_decay", 'opt["weight_decay"]')
    if opt.name in ("sgd", "rmsprop"):
        doc = OPTIMIZER_DOCS[(opt.name, opt.rule)]
        cls = RUNTIME_OPTIMIZERS.get((opt.name, opt.rule), TORCH_OPTIMIZERS[opt.name])
        keys = SETTINGS[opt.name]
        options = [Pair(k, f"opt[{string(k)}]") for k in keys]
        call = (
            Call(cls, (params, lr, *options))
            if _runtime_rule(opt)  # the runtime's rules step lists of tensors themselves
            else Call("multi_tensor", (cls, params, lr, *options))
        )
    else:
        cls, doc = (
            ("torch.optim.Adam", "Adam with weight decay as an L2 term in the gradient.")
            if opt.name == "adam"
            else ("torch.optim.AdamW", "AdamW: weight decay decoupled from the gradient.")
        )
        betas = Pair("betas", '(opt["beta1"], opt["beta2"])')
        call = Call("multi_tensor", (cls, params, lr, betas, Pair("eps", 'opt["eps"]'), decay))
    return "\n".join(
        [
            "def build_optimizer(model, lr=None):",
            f'    """{doc}"""',
            '    opt = TRAIN["optimizer"]',
            *(['    lr = opt["lr"] if lr is None else lr'] if train.lr_scale else []),
            statement(call, 4, "return "),
        ]
    )


def _build_scheduler(schedule) -> str:
    """build_scheduler(optimizer) reading TRAIN["schedule"]; None for a constant rate."""
    if schedule.name not in SCHEDULES:
        return "\n".join(
            [
                "def build_scheduler(optimizer):",
                '    """No schedule (None): the spec keeps the learning rate constant."""',
            ]
        )
    cls = SCHEDULES[schedule.name]
    options = [
        Pair(key, f"schedule[{string(key)}]") for key in schedule.model_dump() if key != "name"
    ]
    if schedule.name == "cosine":
        options.insert(0, Pair("epochs", 'TRAIN["epochs"]'))
    return "\n".join(
        [
            "def build_scheduler(optimizer):",
            f'    """The spec\'s {schedule.name} schedule, stepped once per epoch by the trainer."""',
            '    schedule = TRAIN["schedule"]',
            statement(Call(cls, ("optimizer", *options)), 4, "return "),
        ]
    )
