"""An independent shape tracker: what each layer of a spec outputs and how many parameters it
has, or which diagnostic refuses the spec, from the frameworks' documented rules and README.md
(never from archdsl/shapes.py).

Rules, with where they come from:
- conv (README "Ops", PyTorch Conv2d): out = floor((in + before + after - d*(k-1) - 1) / s) + 1,
  ceil instead of floor with ceil=true (README: no drop rule for convs); `same` as TensorFlow:
  out = ceil(in / s), total padding max((out-1)*s + d*(k-1) + 1 - in, 0), the odd pixel after;
  params filters * in/groups * kh * kw (+ filters with a bias); groups divide in and filters
  (E008).
- maxpool / avgpool (PyTorch MaxPool2d / AvgPool2d): the same formula with d = 1; with
  ceil_mode the last window must start inside the input or the left padding (else it is
  dropped); padding at most half the kernel (PyTorch's check; E004); stride defaults to kernel.
- an output size below 1 is E007.
- conv_transpose (PyTorch ConvTranspose2d): out = (in-1)*s - 2*pad + d*(k-1) + output_pad + 1;
  output_pad must be below the stride or the dilation (PyTorch's check; E004); pad is a whole
  number or H x W (no `same`); params in * filters/groups * kh * kw (+ filters with a bias),
  groups divide in and filters (E008). upsample (PyTorch Upsample(scale_factor)): H and W times
  the scale; `align_corners` only with `mode=bilinear` (PyTorch refuses it otherwise; E004).
- global_avgpool -> C x 1 x 1; adaptive_avgpool -> C x size (PyTorch's AdaptiveAvgPool2d: any
  size); resize -> C x size; lrn, the pools, conv, resize need a map (E018); dense needs a
  vector (E012); flatten of a map gives C*H*W, of a vector the vector (torch.nn.Flatten).
- batchnorm: 4 * C parameters, 2 * C trainable; layernorm 2 * C (weight, bias) and
  layer_scale C (scale), all trainable, on a map or a vector; other ops none.
  stochastic_depth's p is 0 to 1 (E004 outside). A statement that does not
  reach the output is not built (issue 3, W103): its layers have no parameters.
- concat: maps with equal H x W (channels add up) or vectors (features add up); add and mul:
  shapes of one rank whose sizes are equal or 1 (README "Broadcasting": NumPy's rule, a size
  of 1 stretches); anything else E013; fewer than two inputs E005 ("two or more").
- chunk(chunks, part): C / chunks channels (features of a vector), chunks dividing C (E008),
  part from 0 to chunks - 1 (E004); channel_shuffle(groups): a map (E018), groups dividing C
  (E008), same shape (torchvision's channel_shuffle).
- token sequences (README "Token sequences", issue 13): to_tokens C x H x W -> H*W x C (a map,
  E018); to_map(h, w) L x D -> D x h x w with h * w = L (E013); token(i) -> D, i < L (E013);
  mean_tokens -> D; class_token -> L+1 x D (D parameters); position_embedding same shape (L * D);
  attention(heads) same shape, heads dividing D (E008), 4 D^2 (+ 4 D with bias) parameters;
  all of these but to_tokens need tokens (E018). dense on tokens maps each token's D features
  (L x units, units * D (+ units) parameters), layernorm normalises them (2 D); batchnorm,
  softmax, concat, chunk and layer_scale refuse tokens (E018); flatten gives L * D; the
  element-wise ops and add / mul treat them as any shape.
- names: `from` / merge of an unknown name E010, a name defined twice E009, a cycle E011,
  an unknown op E002, unknown argument E003, missing E005, given twice E016, wrong type E004,
  zero size E006, `expect` not met E014.
- blocks and towers expand as README "Blocks and repetition" and "Towers" say: statements
  `STMT_INDEX_INNER` (`STMT_INNER` without `* N`), towers `NAME_tK`, `merge` a `concat` layer
  of the statement, and reading a towered statement from outside a `NAME.concat` join layer.

`pad=same` with `ceil=true` is E004, and so is `concat(...)` / `add(...)` with `from`.
Combinations the README leaves open raise Undocumented (the generator never writes them): a
towered output; `merge` of an input without towers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .spec import Init, Spec, Stmt, Towers, evaluate

REQUIRED = object()
STRIDE_IS_KERNEL = object()

# op -> (argument, kind, default) in the positional order of README's Ops table
OPS: dict[str, tuple] = {
    "conv": (
        ("filters", "count", REQUIRED),
        ("kernel", "pair", REQUIRED),
        ("stride", "pair", 1),
        ("pad", "pad", 0),
        ("dilation", "pair", 1),
        ("groups", "count", 1),
        ("bias", "bias", True),
        ("weight", "init", None),
        ("ceil", "bool", False),
    ),
    "maxpool": (
        ("kernel", "pair", REQUIRED),
        ("stride", "pair", STRIDE_IS_KERNEL),
        ("pad", "pad", 0),
        ("ceil", "bool", False),
    ),
    "avgpool": (
        ("kernel", "pair", REQUIRED),
        ("stride", "pair", STRIDE_IS_KERNEL),
        ("pad", "pad", 0),
        ("ceil", "bool", False),
        ("count_pad", "bool", True),
    ),
    "global_avgpool": (),
    "adaptive_avgpool": (("size", "pair", REQUIRED),),
    "lrn": (
        ("size", "count", 5),
        ("alpha", "number", 1e-4),
        ("beta", "number", 0.75),
        ("k", "number", 2),
    ),
    "batchnorm": (("eps", "number", 1e-5), ("momentum", "number", 0.1)),
    "layernorm": (("eps", "number", 1e-5),),
    "layer_scale": (("init", "number", 1e-6),),
    "dropout": (("p", "number", 0.5),),
    "stochastic_depth": (("p", "probability", REQUIRED),),
    "flatten": (),
    "dense": (("units", "count", REQUIRED), ("bias", "bias", True), ("weight", "init", None)),
    "relu": (),
    "relu6": (),
    "tanh": (),
    "sigmoid": (),
    "silu": (),
    "hardswish": (),
    "hardsigmoid": (),
    "mish": (),
    "leaky_relu": (("slope", "number", 0.01),),
    "gelu": (("approximate", ("none", "tanh"), "none"),),
    "softmax": (),
    "resize": (("size", "pair", REQUIRED), ("mode", ("bilinear", "nearest"), "bilinear")),
    "conv_transpose": (
        ("filters", "count", REQUIRED),
        ("kernel", "pair", REQUIRED),
        ("stride", "pair", 1),
        ("pad", "offsets", 0),
        ("output_pad", "offsets", 0),
        ("groups", "count", 1),
        ("dilation", "pair", 1),
        ("bias", "bias", True),
        ("weight", "init", None),
    ),
    "upsample": (
        ("scale", "pair", 2),
        ("mode", ("nearest", "bilinear"), "nearest"),
        ("align_corners", "bool", False),
    ),
    "chunk": (("chunks", "count", REQUIRED), ("part", "whole", REQUIRED)),
    "channel_shuffle": (("groups", "count", REQUIRED),),
    "to_tokens": (),
    "to_map": (("height", "count", REQUIRED), ("width", "count", REQUIRED)),
    "token": (("index", "whole", REQUIRED),),
    "mean_tokens": (),
    "class_token": (),
    "position_embedding": (("std", "number", 0.02),),
    "attention": (
        ("heads", "count", REQUIRED),
        ("dropout", "number", 0),
        ("bias", "bool", True),
    ),
    "concat": (),
    "add": (),
    "mul": (),
}
MERGES = ("concat", "add", "mul")
# ops holding trainable (C,) tensors of a map's channels or a vector's features, by name
PER_CHANNEL = {"layernorm": ("weight", "bias"), "layer_scale": ("scale",)}
MAP_OPS = ("conv", "maxpool", "avgpool", "global_avgpool", "adaptive_avgpool", "lrn", "resize")
MAP_OPS += ("conv_transpose", "upsample", "channel_shuffle", "to_tokens")
TOKEN_OPS = ("to_map", "token", "mean_tokens", "class_token", "position_embedding", "attention")
NO_TOKENS = ("batchnorm", "softmax", "chunk", "layer_scale")  # their meaning is per channel
RESERVED = ("forward", "train", "eval", "parameters", "torch", "nn", "keras", "in")


class SpecError(Exception):
    """The spec is invalid: the diagnostic code, and the statement whose line it points at
    (or a tuple of statements, any of whose lines will do)."""

    def __init__(self, code: str, where: str | None, message: str):
        """The code, where and why."""
        super().__init__(f"{code} at {where}: {message}")
        self.code, self.where, self.message = code, where, message


class Undocumented(Exception):
    """The README does not say what the spec means."""


@dataclass
class Layer:
    """One op's output: what `archdsl shapes` lists as a layer."""

    name: str
    statement: str
    op: str
    shape: tuple
    params: int = 0
    trainable: int = 0


@dataclass
class Node:
    """A statement after expanding blocks and towers: it reads `inputs` (merged by `merge`:
    concat, add, or None for one input) and runs `ops`, each (kind, bound arguments)."""

    name: str
    inputs: list
    merge: str | None
    ops: list
    where: str | None  # the top-level statement whose line a diagnostic points at
    expect: tuple | None = None


@dataclass
class Prediction:
    """What the tracker predicts for a spec: an error, or every layer and statement."""

    error: SpecError | None = None
    layers: dict = field(default_factory=dict)  # layer name -> Layer
    shapes: dict = field(default_factory=dict)  # statement or input -> output shape
    tensors: dict = field(default_factory=dict)  # portable name -> shape
    output: str | None = None
    unused: set = field(default_factory=set)  # statements that do not reach the output
    unused_inputs: set = field(default_factory=set)

    @property
    def valid(self) -> bool:
        """Whether the tracker accepts the spec."""
        return self.error is None


# ----------------------------------------------------------------------------- arguments


def bind(kind: str, op, where: str | None) -> dict:
    """The op's arguments by name, defaults filled in, checked (E002-E006, E016)."""
    if kind not in OPS or kind in MERGES:
        raise SpecError("E002", where, f"unknown op {kind}")
    signature = OPS[kind]
    names = [name for name, _, _ in signature]
    items = op.items()
    if op.positional > len(signature):
        raise SpecError("E016", where, f"{kind}: too many positional arguments")
    given = {}
    for index, (name, value) in enumerate(items):
        if index < op.positional:
            name = names[index]
        elif name not in names:
            raise SpecError("E003", where, f"{kind}: unknown argument {name}")
        if name in given:
            raise SpecError("E016", where, f"{kind}: {name} given twice")
        given[name] = value
    bound = {}
    for name, arg_kind, default in signature:
        if name not in given:
            if default is REQUIRED:
                raise SpecError("E005", where, f"{kind}: missing {name}")
            if default is None or default is STRIDE_IS_KERNEL:
                bound[name] = default
                continue
        value = given.get(name, default)
        bound[name] = check_value(kind, name, arg_kind, value, where)
    if bound.get("stride") is STRIDE_IS_KERNEL:
        bound["stride"] = bound["kernel"]
    if kind == "upsample" and "align_corners" in given and bound["mode"] != "bilinear":
        raise SpecError("E004", where, "upsample: align_corners without mode=bilinear")
    if kind == "conv_transpose":
        axes = zip(bound["output_pad"], bound["stride"], bound["dilation"], strict=True)
        for extra, s, d in axes:
            if extra >= max(s, d):
                raise SpecError("E004", where, "conv_transpose: output_pad >= stride, dilation")
    return bound


def check_value(op: str, name: str, kind, value, where):
    """One argument's value, as its kind allows (E004 for the wrong kind, E006 for sizes < 1)."""
    wrong = SpecError("E004", where, f"{op}: {name}={value!r}")
    if isinstance(kind, tuple):
        if value not in kind:
            raise wrong
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise wrong
        return value
    if kind == "bias":
        if not isinstance(value, (bool, Init)):
            raise wrong
        return value is not False
    if kind == "init":
        if not isinstance(value, Init):
            raise wrong
        return value
    if kind in ("number", "probability"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise wrong
        if kind == "probability" and not 0 <= value <= 1:
            raise wrong
        return value
    if kind == "pad" and value in ("same", "valid"):
        return value
    if kind == "whole":
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong
        return value
    sizes = value if isinstance(value, tuple) and kind != "count" else (value,)
    if len(sizes) > 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in sizes):
        raise wrong
    low = 0 if kind in ("pad", "offsets") else 1
    if min(sizes) < low:
        raise SpecError("E006", where, f"{op}: {name} below {low}")
    if kind == "count":
        return sizes[0]
    return sizes * 2 if len(sizes) == 1 else sizes


# ----------------------------------------------------------------------------- shape rules


def same_padding(size: int, span: int, stride: int) -> tuple[int, int]:
    """TensorFlow's `same`: out = ceil(size / stride), the odd pixel of padding after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + span - size, 0)
    return total // 2, total - total // 2


def axis_padding(pad, axis: int, size: int, span: int, stride: int) -> tuple[int, int]:
    """(before, after) padding of one axis for a `pad` argument."""
    if pad == "same":
        return same_padding(size, span, stride)
    if pad == "valid":
        return 0, 0
    return pad[axis], pad[axis]


def window_size(size, span, stride, before, after, ceil, pool) -> int:
    """Outputs of a sliding window along one axis (PyTorch's formula; pools drop a last window
    that would start in the right padding)."""
    room = size + before + after - span
    out = (-(-room // stride) if ceil else room // stride) + 1
    if pool and ceil and (out - 1) * stride >= size + before:
        out -= 1
    return out


def windowed(kind: str, args: dict, shape: tuple, where) -> tuple:
    """The H x W of a conv or pool output (E004 for pool padding over half the kernel, E007
    for no output)."""
    pool = kind != "conv"
    if args["pad"] == "same" and args["ceil"]:
        raise SpecError("E004", where, f"{kind}: ceil=true with pad=same (README: refused)")
    out = []
    for axis in (0, 1):
        size, k, s = shape[1 + axis], args["kernel"][axis], args["stride"][axis]
        d = 1 if pool else args["dilation"][axis]
        span = d * (k - 1) + 1
        before, after = axis_padding(args["pad"], axis, size, span, s)
        if pool and max(before, after) > k // 2:
            raise SpecError("E004", where, f"{kind}: padding over half the kernel {k}")
        n = window_size(size, span, s, before, after, args["ceil"], pool)
        if n < 1:
            raise SpecError("E007", where, f"{kind}: no output along axis {axis}")
        out.append(n)
    return tuple(out)


def apply_op(kind: str, args: dict, shape: tuple, where) -> tuple[tuple, int, int]:
    """(output shape, parameters, trainable parameters) of one op on `shape`."""
    if kind in MAP_OPS and len(shape) != 3:
        raise SpecError("E018", where, f"{kind} needs a map, got {shape}")
    if kind in TOKEN_OPS and len(shape) != 2 or kind in NO_TOKENS and len(shape) == 2:
        raise SpecError("E018", where, f"{kind} on {shape}")
    if len(shape) == 2 and kind in (*TOKEN_OPS, "dense", "layernorm"):
        return on_tokens(kind, args, shape, where)
    if kind == "to_tokens":
        return (shape[1] * shape[2], shape[0]), 0, 0
    if kind == "conv":
        channels, filters, groups = shape[0], args["filters"], args["groups"]
        if channels % groups or filters % groups:
            raise SpecError("E008", where, f"groups {groups} vs {channels} -> {filters}")
        kh, kw = args["kernel"]
        params = filters * (channels // groups) * kh * kw + (filters if args["bias"] else 0)
        return (filters, *windowed(kind, args, shape, where)), params, params
    if kind == "conv_transpose":
        return transposed(args, shape, where)
    if kind == "upsample":
        return (shape[0], shape[1] * args["scale"][0], shape[2] * args["scale"][1]), 0, 0
    if kind in ("maxpool", "avgpool"):
        return (shape[0], *windowed(kind, args, shape, where)), 0, 0
    if kind == "global_avgpool":
        return (shape[0], 1, 1), 0, 0
    if kind in ("adaptive_avgpool", "resize"):
        return (shape[0], *args["size"]), 0, 0
    if kind == "flatten":
        return (math.prod(shape),), 0, 0
    if kind == "dense":
        if len(shape) != 1:
            raise SpecError("E012", where, f"dense on a map {shape}")
        params = args["units"] * shape[0] + (args["units"] if args["bias"] else 0)
        return (args["units"],), params, params
    if kind == "batchnorm":
        return shape, 4 * shape[0], 2 * shape[0]
    if kind in PER_CHANNEL:
        params = len(PER_CHANNEL[kind]) * shape[0]
        return shape, params, params
    if kind == "chunk":
        if not 0 <= args["part"] < args["chunks"]:
            raise SpecError("E004", where, f"chunk: part {args['part']} of {args['chunks']}")
        if shape[0] % args["chunks"]:
            raise SpecError("E008", where, f"chunk: {args['chunks']} parts of {shape[0]}")
        return (shape[0] // args["chunks"], *shape[1:]), 0, 0
    if kind == "channel_shuffle" and shape[0] % args["groups"]:
        raise SpecError("E008", where, f"channel_shuffle: {args['groups']} groups of {shape[0]}")
    return shape, 0, 0


def on_tokens(kind: str, args: dict, shape: tuple, where) -> tuple[tuple, int, int]:
    """(output shape, parameters, trainable parameters) of an op on L x D tokens."""
    length, dim = shape
    if kind == "to_map":
        if args["height"] * args["width"] != length:
            raise SpecError("E013", where, f"to_map {args['height']} x {args['width']} of {length}")
        return (dim, args["height"], args["width"]), 0, 0
    if kind == "token":
        if args["index"] < 0:
            raise SpecError("E004", where, f"token({args['index']})")
        if args["index"] >= length:
            raise SpecError("E013", where, f"token({args['index']}) of {length}")
        return (dim,), 0, 0
    if kind == "mean_tokens":
        return (dim,), 0, 0
    if kind == "attention" and dim % args["heads"]:
        raise SpecError("E008", where, f"attention: {args['heads']} heads of {dim}")
    params = {
        "class_token": dim,
        "position_embedding": length * dim,
        "attention": 4 * dim * dim + (4 * dim if args.get("bias") else 0),
        "layernorm": 2 * dim,
        "dense": args.get("units", 0) * dim + (args.get("units", 0) if args.get("bias") else 0),
    }[kind]
    out = {"class_token": (length + 1, dim), "dense": (length, args.get("units"))}
    return out.get(kind, shape), params, params


def transposed(args: dict, shape: tuple, where) -> tuple[tuple, int, int]:
    """(output shape, parameters, trainable parameters) of a conv_transpose."""
    channels, filters, groups = shape[0], args["filters"], args["groups"]
    if channels % groups or filters % groups:
        raise SpecError("E008", where, f"groups {groups} vs {channels} -> {filters}")
    out = []
    for axis in (0, 1):
        k, s, d = args["kernel"][axis], args["stride"][axis], args["dilation"][axis]
        p, extra = args["pad"][axis], args["output_pad"][axis]
        n = (shape[1 + axis] - 1) * s - 2 * p + d * (k - 1) + extra + 1
        if n < 1:
            raise SpecError("E007", where, f"conv_transpose: no output along axis {axis}")
        out.append(n)
    kh, kw = args["kernel"]
    params = channels * (filters // groups) * kh * kw + (filters if args["bias"] else 0)
    return (filters, *out), params, params


def merged(kind: str, shapes: list, where) -> tuple:
    """The output of concat / add / mul over `shapes` (E013 when they do not fit)."""
    first = shapes[0]
    if kind in ("add", "mul"):
        if any(len(s) != len(first) for s in shapes):
            raise SpecError("E013", where, f"{kind} of {shapes}")
        out = []
        for sizes in zip(*shapes, strict=True):
            wide = set(sizes) - {1}
            if len(wide) > 1:
                raise SpecError("E013", where, f"{kind} of {shapes}")
            out.append(max(sizes))
        return tuple(out)
    if any(len(s) == 2 for s in shapes):
        raise SpecError("E018", where, f"concat of tokens {shapes}")
    if any(len(s) != len(first) or s[1:] != first[1:] for s in shapes):
        raise SpecError("E013", where, f"concat of {shapes}")
    return (sum(s[0] for s in shapes), *first[1:])


def op_tensors(layer: str, kind: str, args: dict, shape: tuple) -> dict:
    """The portable tensors of one op fed by `shape` (README "Conformance")."""
    if kind == "conv":
        kh, kw = args["kernel"]
        out = {f"{layer}.weight": (args["filters"], shape[0] // args["groups"], kh, kw)}
        return out | ({f"{layer}.bias": (args["filters"],)} if args["bias"] else {})
    if kind == "conv_transpose":
        kh, kw = args["kernel"]
        out = {f"{layer}.weight": (shape[0], args["filters"] // args["groups"], kh, kw)}
        return out | ({f"{layer}.bias": (args["filters"],)} if args["bias"] else {})
    if kind == "dense":
        out = {f"{layer}.weight": (args["units"], shape[-1])}
        return out | ({f"{layer}.bias": (args["units"],)} if args["bias"] else {})
    if kind in ("class_token", "position_embedding", "attention"):
        return token_tensors(layer, kind, args, shape)
    if kind == "layernorm" and len(shape) == 2:
        return {f"{layer}.weight": (shape[1],), f"{layer}.bias": (shape[1],)}
    if kind == "batchnorm":
        names = ("weight", "bias", "running_mean", "running_var")
        return {f"{layer}.{n}": (shape[0],) for n in names}
    return {f"{layer}.{n}": (shape[0],) for n in PER_CHANNEL.get(kind, ())}


def token_tensors(layer: str, kind: str, args: dict, shape: tuple) -> dict:
    """The portable tensors of a class token, a position embedding or an attention layer
    (README's Ops table: torchvision's and nn.MultiheadAttention's shapes)."""
    length, dim = shape
    if kind == "class_token":
        return {f"{layer}.token": (1, 1, dim)}
    if kind == "position_embedding":
        return {f"{layer}.embedding": (1, length, dim)}
    out = {f"{layer}.in_proj_weight": (3 * dim, dim)}
    out |= {f"{layer}.in_proj_bias": (3 * dim,)} if args["bias"] else {}
    out |= {f"{layer}.out_proj.weight": (dim, dim)}
    return out | ({f"{layer}.out_proj.bias": (dim,)} if args["bias"] else {})


# ----------------------------------------------------------------------------- expansion


def check_pipeline(stmt: Stmt) -> None:
    """A statement runs at least one op or merge (E001); a merge names its inputs, so a
    `from` beside it is an E004 (README's ops table)."""
    if not (stmt.ops or stmt.merge or stmt.tower_merge or stmt.call):
        raise SpecError("E001", stmt.name, f"{stmt.name} has no op")
    if stmt.merge and stmt.source:
        raise SpecError("E004", stmt.name, f"{stmt.name}: a merge names its inputs; no `from`")


class Expander:
    """Blocks and towers expanded into Nodes, names resolved as README says."""

    def __init__(self, spec: Spec):
        """The spec to expand; nothing expanded yet."""
        self.spec = spec
        self.nodes: dict[str, Node] = {}
        self.inputs = dict(spec.inputs)
        self.alias: dict[str, str] = {}  # a block-call statement -> its last node
        self.towered: dict[str, int] = {}  # towered statement -> tower count
        self.blocks = {b.name: b for b in spec.blocks}
        self.defined: set[str] = set(self.inputs)

    def define(self, name: str, where) -> None:
        """Record a statement's name (E009 when taken, E015 when reserved)."""
        if name in self.defined:
            raise SpecError("E009", where, f"{name} defined twice")
        if name in RESERVED:
            raise SpecError("E015", where, f"{name} is reserved")
        self.defined.add(name)

    def run(self) -> str:
        """Expand every item; the output node's name."""
        if len({name for name, _ in self.spec.inputs}) != len(self.spec.inputs):
            raise SpecError("E009", None, "an input defined twice")
        previous, last = self.spec.inputs[0][0], None
        for item in self.spec.items:
            if isinstance(item, Towers):
                previous = self.towers(item, previous)
                last = None
            else:
                previous = last = self.statement(item, previous)
        if last is None:
            raise Undocumented("a model whose output is a towered statement")
        return self.resolve(last, None)

    def statement(self, stmt: Stmt, previous: str) -> str:
        """Expand a top-level statement; its name."""
        where = stmt.name
        self.define(stmt.name, where)
        if stmt.call:
            start = stmt.source or previous
            self.alias[stmt.name] = self.call(stmt.name, stmt.call, start, {}, stmt.name)
            return stmt.name
        check_pipeline(stmt)
        inputs = list(stmt.merge[1]) if stmt.merge else [stmt.source or previous]
        merge = stmt.merge[0] if stmt.merge else None
        self.nodes[stmt.name] = Node(stmt.name, inputs, merge, stmt.ops, where, stmt.expect)
        return stmt.name

    def towers(self, towers: Towers, previous: str) -> str:
        """Expand a towers block: each statement once per tower; the last one's name."""
        for stmt in towers.body:
            self.define(stmt.name, stmt.name)
            check_pipeline(stmt)
            self.towered[stmt.name] = towers.count
            for tower in range(towers.count):
                read = (
                    [f"{n}_t{tower}" if n in self.towered else n for n in stmt.merge[1]]
                    if stmt.merge
                    else [stmt.source or previous]
                )
                merge = stmt.merge[0] if stmt.merge else None
                if stmt.tower_merge:
                    if read[0] not in self.towered:
                        raise Undocumented("merge of an input that has no towers")
                    read, merge = [f"{read[0]}_t{t}" for t in range(towers.count)], "concat"
                elif not stmt.merge and read[0] in self.towered:
                    read = [f"{read[0]}_t{tower}"]
                name = f"{stmt.name}_t{tower}"
                self.nodes[name] = Node(name, read, merge, stmt.ops, stmt.name, stmt.expect)
            previous = stmt.name
        return previous

    def call(self, name: str, call, start: str, outer: dict, where=None) -> str:
        """Expand a block call (`* N`) reading `start`, its arguments evaluated in `outer`
        (the calling block's parameters); the name of its last node."""
        block = self.blocks.get(call.block)
        if block is None:
            raise SpecError("E010", where, f"no block {call.block}")
        current = start
        for index in range(call.repeat or 1):
            prefix = f"{name}.{index}." if call.repeat else f"{name}."
            env = {param: default for param, _, default in block.params}
            scope = {**outer, "index": index}
            env |= {k: evaluate(v, scope) for k, v in call.args.items()}
            current = self.body(block, env, prefix, current)
        return current

    def body(self, block, env: dict, prefix: str, start: str) -> str:
        """One expansion of a block's body reading `start`; its last statement's node (its
        diagnostics point into the block, so no top-level line is predicted)."""
        kept = [s for s in block.body if s.cond is None or bool(env[s.cond[0]]) == s.cond[1]]
        local = {s.name for s in kept}

        def name(n):
            """What a name in the block's body reads."""
            return start if n == "in" else prefix + n if n in local else n

        previous = start
        for inner in kept:
            source = name(inner.source) if inner.source else previous
            if inner.call:  # a block calling a block: STATEMENT_INNER_INDEX_INNER names
                previous = self.call(prefix + inner.name, inner.call, source, env)
                self.alias[prefix + inner.name] = previous
                continue
            ops = [
                type(op)(op.kind, {k: evaluate(v, env) for k, v in op.args.items()}, op.positional)
                for op in inner.ops
            ]
            inputs = [name(n) for n in inner.merge[1]] if inner.merge else [source]
            node = Node(prefix + inner.name, inputs, inner.merge and inner.merge[0], ops, None)
            self.nodes[node.name] = node
            previous = node.name
        return previous

    def resolve(self, name: str, where) -> str:
        """The node or input a reference reads (a join node for a towered statement)."""
        if name in self.inputs or name in self.nodes and name not in self.towered:
            return name
        if name in self.alias:
            return self.alias[name]
        if name in self.towered:
            if name not in self.nodes:
                towers = [f"{name}_t{t}" for t in range(self.towered[name])]
                self.nodes[name] = Node(name, towers, "concat", [], name)
            return name
        raise SpecError("E010", where, f"undefined name {name}")


# ----------------------------------------------------------------------------- prediction


def predict(spec: Spec) -> Prediction:
    """The tracker's verdict on a spec (raises Undocumented where the README is silent)."""
    result = Prediction()
    try:
        expander = Expander(spec)
        output = expander.run()
        evaluate_nodes(expander, output, result)
    except SpecError as error:
        return Prediction(error=error)
    return result


def evaluate_nodes(expander: Expander, output: str, result: Prediction) -> None:
    """Resolve every node's inputs, order them (E011 on a cycle), and compute the layers."""
    nodes = expander.nodes
    for node in list(nodes.values()):
        node.inputs = [expander.resolve(n, node.where) for n in node.inputs]
    bound = {
        name: [(op.kind, bind(op.kind, op, node.where)) for op in node.ops]
        for name, node in nodes.items()
    }
    result.shapes = {name: tuple(shape) for name, shape in expander.inputs.items()}
    for name in topological(nodes):
        node = nodes[name]
        shape = None
        counts: dict[str, int] = {}
        if node.merge:
            if len(node.inputs) < 2:
                raise SpecError("E005", node.where, f"{node.merge} of fewer than two inputs")
            shape = merged(node.merge, [result.shapes[n] for n in node.inputs], node.where)
            add_layer(result, node, node.merge, counts, shape, 0, 0)
        else:
            shape = result.shapes[node.inputs[0]]
        for kind, args in bound[name]:
            out, params, trainable = apply_op(kind, args, shape, node.where)
            layer = add_layer(result, node, kind, counts, out, params, trainable)
            result.tensors |= op_tensors(layer, kind, args, shape)
            shape = out
        if node.expect and tuple(node.expect) != shape:
            raise SpecError("E014", node.where, f"{name} is {shape}, expected {node.expect}")
        result.shapes[name] = shape
    for name, target in expander.alias.items():
        result.shapes[name] = result.shapes[target]
    for name, count in expander.towered.items():
        towers = [result.shapes[f"{name}_t{t}"] for t in range(count)]
        result.shapes[name] = merged("concat", towers, name)
    result.output = output
    reached = reachable(nodes, output)
    result.unused = set(nodes) - reached
    result.unused_inputs = set(expander.inputs) - reached
    unbuilt(result)


def unbuilt(result: Prediction) -> None:
    """A statement that does not reach the output is not built (issue 3): its layers keep
    their shapes but have no parameters, and no tensors in the weights file."""
    for layer in result.layers.values():
        if layer.statement in result.unused:
            layer.params = layer.trainable = 0
    result.tensors = {
        name: shape
        for name, shape in result.tensors.items()
        if result.layers[layer_of(name, result.layers)].statement not in result.unused
    }


def layer_of(tensor: str, layers: dict) -> str:
    """The layer holding a portable tensor: its name less the tensor's (`out_proj.weight` of
    an attention layer has a dot of its own)."""
    head, _, _ = tensor.rpartition(".")
    return head if head in layers else head.rpartition(".")[0]


def add_layer(result, node, kind, counts, shape, params, trainable) -> str:
    """Record a layer `statement.op` (a repeated op gets _2, _3); its name."""
    counts[kind] = counts.get(kind, 0) + 1
    name = f"{node.name}.{kind}" + (f"_{counts[kind]}" if counts[kind] > 1 else "")
    result.layers[name] = Layer(name, node.name, kind, tuple(shape), params, trainable)
    return name


def topological(nodes: dict) -> list:
    """Node names, each after the nodes it reads (E011 on a cycle, which may be reported at
    any of its statements)."""
    order, state, stack = [], {}, []

    def visit(name):
        """Order `name` after what it reads."""
        if state.get(name) == "done" or name not in nodes:
            return
        if state.get(name) == "open":
            cycle = stack[stack.index(name) :]
            where = tuple(nodes[n].where for n in cycle)
            raise SpecError("E011", where, f"cycle {' -> '.join(cycle)}")
        state[name] = "open"
        stack.append(name)
        for n in nodes[name].inputs:
            visit(n)
        stack.pop()
        state[name] = "done"
        order.append(name)

    for name in nodes:
        visit(name)
    return order


def reachable(nodes: dict, output: str) -> set:
    """The nodes and inputs the output reads, directly or not."""
    seen, stack = set(), [output]
    while stack:
        name = stack.pop()
        if name not in seen:
            seen.add(name)
            stack.extend(nodes[name].inputs if name in nodes else ())
    return seen
