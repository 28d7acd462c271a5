"""Keras 3 `model.py` from a checked graph: plain string building, no framework import."""

from __future__ import annotations

import keyword
from dataclasses import dataclass

from archdsl.backends.block_plan import Plan, calls_under, plan, too_long
from archdsl.backends.keras.builders import (
    ARGUMENTS_RESERVED,
    PARTIAL,
    RUN,
    RUN_FUNCTION,
    call_code,
    function_text,
    used_units,
)
from archdsl.backends.keras.layout import statement
from archdsl.backends.pysource import (
    CONTRACT_NAMES,
    WIDTH,
    Call,
    Code,
    Pair,
    Seq,
    literal,
    num,
    string,
    train_data,
    tup,
    variable_names,
    vocab_line,
)

from archdsl import ir
from archdsl.initializers import Distribution, layer_distributions
from archdsl.masking import masked_blocks, masks
from archdsl.naming import op_labels
from archdsl.ops import REGISTRY
from archdsl.shapes import Layer, Report, Shape, resolve_padding, trailing_softmax

RUNTIME = {
    "ConvTranspose2D": "layers",
    "FlattenCHW": "layers",
    "LocalResponseNorm": "layers",
    "PaddedAvgPool2D": "layers",
    "PaddedMaxPool2D": "layers",
    "Resize": "layers",
    "L2Adam": "optim",
    "TorchAdamW": "optim",
    "PaperSGD": "optim",
    "TorchSGD": "optim",
    "TorchRMSprop": "optim",
    "TFRMSprop": "optim",
    "exclude_from_decay": "optim",
    "freeze_statements": "optim",
    "scale_rates": "optim",
    "Cosine": "schedules",
    "MultiStep": "schedules",
    "OnPlateau": "schedules",
    "StepDecay": "schedules",
    "BatchNorm": "layers",
    "Gelu": "layers",
    "LayerNorm": "layers",
    "LayerScale": "layers",
    "StochasticDepth": "layers",
    "TruncatedNormal": "initializers",
    "Chunk": "layers",
    "ChannelShuffle": "layers",
    "BroadcastMerge": "layers",
    "ShiftedWindowAttention": "shifted_windows",
    "SpaceToDepth": "shifted_windows",
    "ToTokens": "token_layers",
    "ToMap": "token_layers",
    "SelectToken": "token_layers",
    "MeanTokens": "token_layers",
    "ClassToken": "token_layers",
    "PositionEmbedding": "token_layers",
    "SelfAttention": "token_layers",
    "TokenEmbedding": "sequence",
    "Recurrent": "sequence",
    "real_tokens": "sequence",
    "Reshape": "reshape_layers",
    "Permute": "reshape_layers",
}
ADAPTIVE = "_AdaptiveAvgPool2D"
# Names build_model's body reads: a spec name equal to one gets a trailing `_` as a variable.
RESERVED = {"keras", "INPUT_SHAPE", "MODEL_NAME", ADAPTIVE, *RUNTIME}
BODY = 4  # indentation of a function body
# what model.py defines at its top level: no builder function may take it
MODULE_NAMES = CONTRACT_NAMES | {RUN, PARTIAL}
SPLIT = ("# The archdsl runtime, copied beside this file:", "# isort: split")

ADAPTIVE_CLASS = f'''class {ADAPTIVE}(keras.layers.Layer):
    """PyTorch's AdaptiveAvgPool2d, channels-last: bin i spans floor(i*n/m) to ceil((i+1)*n/m)."""

    def __init__(self, size, **kwargs):
        super().__init__(**kwargs)
        self.size = tuple(size)

    @staticmethod
    def averages(n, m):
        """The m x n matrix that averages each of PyTorch's m bins of n cells."""
        bins = [(i * n // m, -(-(i + 1) * n // m)) for i in range(m)]
        return [[float(a <= j < b) / (b - a) for j in range(n)] for a, b in bins]

    def call(self, x):
        """Average every bin: a matrix product over rows, then one over columns."""
        h, w = self.size
        rows = keras.ops.convert_to_tensor(self.averages(x.shape[1], h), x.dtype)
        cols = keras.ops.convert_to_tensor(self.averages(x.shape[2], w), x.dtype)
        return keras.ops.einsum("ih,nhwc,jw->nijc", rows, x, cols)

    def get_config(self):
        """Constructor arguments, for saving."""
        return {{**super().get_config(), "size": self.size}}'''

OPTIMIZER_DOCS = {
    "paper": "The paper's SGD: v <- mu*v - wd*lr*w - lr*g; w <- w + v (decay via momentum).",
    "torch": "torch.optim.SGD's rule: b <- mu*b + g + wd*w; w <- w - lr*b.",
    "adam": "Adam with weight decay added to the gradient (L2), as torch.optim.Adam.",
    "adamw": "AdamW: weight decay decoupled from the gradient, as torch.optim.AdamW.",
    "rmsprop/torch": "torch.optim.RMSprop: b <- mu*b + g/(sqrt(v) + eps); w <- w - lr*b.",
    "rmsprop/tf": "TensorFlow's RMSprop: b <- mu*b + lr*g/sqrt(v + eps); w <- w - b.",
}
SCHEDULER_DOCS = {
    "on_plateau": "Multiply the learning rate by `factor` when the metric stops improving.",
    "step": "Multiply the learning rate by `gamma` every `step_size` epochs.",
    "multistep": "Multiply the learning rate by `gamma` at each milestone epoch.",
    "cosine": "Warm up linearly for `warmup` epochs, then anneal along a half cosine to `min_lr`.",
    "none": "No schedule (None): the learning rate stays constant.",
}


@dataclass(frozen=True)
class Step:
    """One layer of build_model: its constructor call and its output shape (C, H, W order)."""

    layer: Call
    shape: Shape


# ----------------------------------------------------------------------------- arguments


def _name(name: str) -> Pair:
    return Pair("name", string(name))


def _size(pair: tuple[int, int]) -> Code:
    """An int when both sides agree (Keras's shorthand), else an (h, w) tuple."""
    return num(pair[0]) if pair[0] == pair[1] else tup(pair)


def _pads(pads) -> Seq:
    """((top, bottom), (left, right))."""
    return Seq("()", tuple(tup(p) for p in pads))


def _initializer(dist: Distribution) -> Call:
    """The resolved distribution as a Keras initialiser (Keras's own truncate at 2 std: not used)."""
    if dist.kind == "normal":
        args = (Pair("mean", num(dist.a)), Pair("stddev", num(dist.b)))
        return Call("keras.initializers.RandomNormal", args)
    if dist.kind == "uniform":
        args = (Pair("minval", num(dist.a)), Pair("maxval", num(dist.b)))
        return Call("keras.initializers.RandomUniform", args)
    if dist.kind == "trunc_normal":
        low, high = dist.bounds
        args = (Pair("mean", num(dist.a)), Pair("stddev", num(dist.b)))
        return Call("TruncatedNormal", (*args, Pair("low", num(low)), Pair("high", num(high))))
    if dist.kind == "constant":
        return Call("keras.initializers.Constant", (num(dist.a),))
    raise ValueError(f"no Keras initialiser for a {dist.kind} distribution")


def _initializers(op, layer: Layer) -> list[Pair]:
    """kernel_initializer and, with a bias, bias_initializer (or use_bias=False)."""
    weight, bias = layer_distributions(op, layer.input_shape)
    args = [Pair("kernel_initializer", _initializer(weight))]
    if bias is None:
        return [Pair("use_bias", "False"), *args]
    return [*args, Pair("bias_initializer", _initializer(bias))]


# ----------------------------------------------------------------------------- windows


def _geometry(op, layer: Layer) -> tuple[tuple[tuple[int, int], ...], tuple[int, ...]]:
    """(before, after) padding per axis, and the extra trailing cells a ceil-mode window reads."""
    dilation = getattr(op, "dilation", (1, 1))
    pads, extra = [], []
    for a in (0, 1):
        size, out = layer.input_shape[1 + a], layer.output_shape[1 + a]
        kernel, stride = op.kernel[a], op.stride[a]
        pad = op.pad if isinstance(op.pad, str) else op.pad[a]
        before, after = resolve_padding(pad, size, kernel, stride, dilation[a])
        reach = (out - 1) * stride + dilation[a] * (kernel - 1) + 1
        pads.append((before, after))
        extra.append(max(reach - (size + before + after), 0))
    return tuple(pads), tuple(extra)


def _same_padding(op, layer: Layer, pads) -> bool:
    """Whether the padding is Keras's `same` (as written, or explicit pads equal to it: one
    layer instead of a ZeroPadding2D copy and a conv)."""
    if op.pad == "same":
        return True
    same = [
        resolve_padding("same", layer.input_shape[1 + a], op.kernel[a], op.stride[a], d)
        for a, d in enumerate(op.dilation)
    ]
    return any(map(any, pads)) and tuple(same) == pads


def _conv(op: ir.Conv, layer: Layer, name: str) -> list[Step]:
    """[ZeroPadding2D] + Conv2D [+ a 1x1 strided max pool that subsamples a stride-1 conv, where
    Keras refuses stride with dilation, or where TensorFlow's oneDNN conv computes a strided
    axis of one output wrong, with one input channel (per group); tests/difffuzz found it]."""
    pads, extra = _geometry(op, layer)
    single = layer.input_shape[0] == op.groups  # one input channel per group
    one_strided = any(o == 1 < s for o, s in zip(layer.output_shape[1:], op.stride, strict=True))
    split = max(op.stride) > 1 and (max(op.dilation) > 1 or single and one_strided)
    same = _same_padding(op, layer, pads) and not any(extra) and not split
    steps, shape = [], layer.input_shape
    padded = tuple((b, a + e) for (b, a), e in zip(pads, extra, strict=True))
    if not same and any(map(any, padded)):
        shape = (shape[0], shape[1] + sum(padded[0]), shape[2] + sum(padded[1]))
        pad = Call("keras.layers.ZeroPadding2D", (_pads(padded), _name(f"{name}_pad")))
        steps.append(Step(pad, shape))
    args = [num(op.filters), _size(op.kernel)]
    if op.stride != (1, 1) and not split:
        args.append(Pair("strides", _size(op.stride)))
    if same:
        args.append(Pair("padding", string("same")))
    if op.dilation != (1, 1):
        args.append(Pair("dilation_rate", _size(op.dilation)))
    if op.groups > 1:
        args.append(Pair("groups", num(op.groups)))
    conv = Call("keras.layers.Conv2D", (*args, *_initializers(op, layer), _name(name)))
    if not split:
        return [*steps, Step(conv, layer.output_shape)]
    dense = [shape[1 + a] - op.dilation[a] * (op.kernel[a] - 1) for a in (0, 1)]
    stride = Call(
        "keras.layers.MaxPooling2D",
        ("1", Pair("strides", _size(op.stride)), _name(f"{name}_stride")),
    )
    return [*steps, Step(conv, (op.filters, *dense)), Step(stride, layer.output_shape)]


def _window(op) -> tuple[Code, Pair]:
    return _size(op.kernel), Pair("strides", _size(op.stride))


def _padded_args(op, pads) -> list[Pair]:
    """padding= and ceil_mode= of the runtime's PyTorch-style pools, where not the default."""
    args = [Pair("padding", _pads(pads))] if any(map(any, pads)) else []
    return args + ([Pair("ceil_mode", "True")] if op.ceil else [])


def _same(op) -> list[Pair]:
    return [Pair("padding", string("same"))] if op.pad == "same" else []


def _maxpool(op: ir.MaxPool, layer: Layer, name: str) -> list[Step]:
    """Keras's pool where it agrees (padding never wins there); else the runtime's -inf pad."""
    pads, extra = _geometry(op, layer)
    if not any(extra) and (op.pad == "same" or not any(map(any, pads))):
        call = Call("keras.layers.MaxPooling2D", (*_window(op), *_same(op), _name(name)))
    else:
        call = Call("PaddedMaxPool2D", (*_window(op), *_padded_args(op, pads), _name(name)))
    return [Step(call, layer.output_shape)]


def _avgpool(op: ir.AvgPool, layer: Layer, name: str) -> list[Step]:
    """Keras's pool where it agrees (its `same` excludes padding); else the runtime's."""
    pads, extra = _geometry(op, layer)
    exclusive_same = op.pad == "same" and not op.count_pad
    if not any(extra) and (exclusive_same or not any(map(any, pads))):
        call = Call("keras.layers.AveragePooling2D", (*_window(op), *_same(op), _name(name)))
    else:
        count = Pair("count_include_pad", repr(op.count_pad))
        args = (*_window(op), *_padded_args(op, pads), count, _name(name))
        call = Call("PaddedAvgPool2D", args)
    return [Step(call, layer.output_shape)]


def _uniform_bins(size: int, out: int) -> tuple[int, int] | None:
    """(window, stride) when PyTorch's adaptive bins are one sliding window, else None."""
    bins = [(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]
    widths = {end - start for start, end in bins}
    strides = {b[0] - a[0] for a, b in zip(bins, bins[1:], strict=False)}
    if len(widths) != 1 or len(strides) > 1 or 0 in strides:
        return None
    width = widths.pop()
    return width, strides.pop() if strides else width


def _adaptive(op: ir.AdaptiveAvgPool, layer: Layer, name: str) -> list[Step]:
    """A plain AveragePooling2D when the bins tile evenly, else the private adaptive layer."""
    windows = [_uniform_bins(layer.input_shape[1 + a], op.size[a]) for a in (0, 1)]
    if None in windows:
        return [Step(Call(ADAPTIVE, (tup(op.size), _name(name))), layer.output_shape)]
    kernel, stride = zip(*windows, strict=True)
    args = (_size(kernel), Pair("strides", _size(stride)), _name(name))
    return [Step(Call("keras.layers.AveragePooling2D", args), layer.output_shape)]


# ----------------------------------------------------------------------------- other layers


def _simple(func: str, *args: Code):
    """A builder for a layer whose arguments do not depend on the op."""
    return lambda op, layer, name: [Step(Call(func, (*args, _name(name))), layer.output_shape)]


def _layer(func: str, args):
    """A builder for a layer whose arguments are a function of the op."""
    return lambda op, layer, name: [Step(Call(func, (*args(op), _name(name))), layer.output_shape)]


def _dense(op: ir.Dense, layer: Layer, name: str) -> list[Step]:
    args = (num(op.units), *_initializers(op, layer), _name(name))
    return [Step(Call("keras.layers.Dense", args), layer.output_shape)]


def _kws(op, *names: str) -> tuple[Pair, ...]:
    """`name=value` for the op's arguments `names`."""
    return tuple(Pair(n, num(getattr(op, n))) for n in names)


def _lrn_args(op: ir.LRN) -> tuple[Code, ...]:
    return (
        num(op.size),
        Pair("alpha", num(op.alpha)),
        Pair("beta", num(op.beta)),
        Pair("k", num(op.k)),
    )


def _batchnorm_args(op: ir.BatchNorm) -> tuple[Code, ...]:
    """Keras's momentum is the old statistic's weight; the IR's (PyTorch's) the new one's."""
    return Pair("momentum", num(1 - op.momentum)), Pair("epsilon", num(op.eps))


def _layernorm_args(op: ir.LayerNorm) -> tuple[Code, ...]:
    """Over the last axis: the channels of a channels-last map, the features of a vector."""
    return Pair("axis", "-1"), Pair("epsilon", num(op.eps))


def _attention_args(op) -> tuple[Code, ...]:
    """heads, and dropout and use_bias where they differ from the defaults."""
    dropout = (Pair("dropout", num(op.dropout)),) if op.dropout else ()
    return (num(op.heads), *dropout, *(() if op.bias else (Pair("use_bias", "False"),)))


def _resize_args(op: ir.Resize) -> tuple[Code, ...]:
    return num(op.size[0]), num(op.size[1]), Pair("interpolation", string(op.mode))


def _conv_transpose(op: ir.ConvTranspose, layer: Layer, name: str) -> list[Step]:
    """The runtime's ConvTranspose2D (PyTorch's padding, output padding and groups)."""
    values = {
        "strides": (op.stride, (1, 1)),
        "padding": (op.pad, (0, 0)),
        "output_padding": (op.output_pad, (0, 0)),
        "dilation_rate": (op.dilation, (1, 1)),
    }
    options = [Pair(k, _size(v)) for k, (v, default) in values.items() if v != default]
    if op.groups > 1:
        options.append(Pair("groups", num(op.groups)))
    args = (num(op.filters), _size(op.kernel), *options, *_initializers(op, layer), _name(name))
    return [Step(Call("ConvTranspose2D", args), layer.output_shape)]


def _upsample(op: ir.Upsample, layer: Layer, name: str) -> list[Step]:
    """The runtime's Resize to the scaled size: for whole-number scales its half-pixel
    centres are nn.Upsample's (nearest reads input floor(i / scale) exactly)."""
    corners = [Pair("align_corners", "True")] if op.align_corners else []
    args = (*map(num, layer.output_shape[1:]), Pair("interpolation", string(op.mode)), *corners)
    return [Step(Call("Resize", (*args, _name(name))), layer.output_shape)]


def _elementwise(func: str):
    """add / mul: Keras's own merge for inputs of one shape, else the runtime's, which
    broadcasts each input to the output's shape (Keras's add mistakes a one-channel gate
    for a bias; see BroadcastMerge)."""

    def build(op, layer: Layer, name: str) -> list[Step]:
        """The merge layer for this statement's input shapes."""
        if len(set(layer.input_shapes)) == 1:
            return [Step(Call(func, (_name(name),)), layer.output_shape)]
        call = Call("BroadcastMerge", (string(op.op), _name(name)))
        return [Step(call, layer.output_shape)]

    return build


def _embedding(op: ir.Embedding, layer: Layer, name: str) -> list[Step]:
    """The runtime's TokenEmbedding: N(0, 1) rows as torch's, the padding row zero and frozen."""
    init = Call("keras.initializers.RandomNormal", (Pair("mean", "0.0"), Pair("stddev", "1.0")))
    padding = [] if op.padding is None else [Pair("padding", num(op.padding))]
    args = (num(op.vocab), num(op.dim), Pair("embeddings_initializer", init), *padding)
    return [Step(Call("TokenEmbedding", (*args, _name(name))), layer.output_shape)]


def _recurrent(op: ir.Recurrent, layer: Layer, name: str) -> list[Step]:
    """The runtime's Recurrent stack (PyTorch's LSTM / GRU), options where not the defaults."""
    options = [Pair("layers", num(op.layers))] if op.layers != 1 else []
    options += [Pair("bidirectional", "True")] if op.bidirectional else []
    options += [Pair("sequences", "True")] if op.sequences else []
    options += [] if op.bias else [Pair("use_bias", "False")]
    call = Call("Recurrent", (string(op.op), num(op.units), *options, _name(name)))
    return [Step(call, layer.output_shape)]


def _reshape(op, layer: Layer, name: str) -> list[Step]:
    """The runtime's Reshape to the output's portable dims (a -1 resolved)."""
    return [Step(Call("Reshape", (tup(layer.output_shape), _name(name))), layer.output_shape)]


_flatten_chw = _simple("FlattenCHW")  # where the flatten order is observed

LAYERS = {
    "conv": _conv,
    "maxpool": _maxpool,
    "avgpool": _avgpool,
    "global_avgpool": _simple("keras.layers.GlobalAveragePooling2D", Pair("keepdims", "True")),
    "adaptive_avgpool": _adaptive,
    "lrn": _layer("LocalResponseNorm", _lrn_args),
    "batchnorm": _layer("BatchNorm", _batchnorm_args),  # PyTorch's running variance
    "dropout": _layer("keras.layers.Dropout", lambda op: (num(op.p),)),
    "stochastic_depth": _layer("StochasticDepth", lambda op: (num(op.p),)),
    "layernorm": _layer("LayerNorm", _layernorm_args),  # centred first, as PyTorch
    "layer_scale": _layer("LayerScale", lambda op: (num(op.init),)),
    "flatten": _simple("keras.layers.Flatten"),
    "dense": _dense,
    "relu": _simple("keras.layers.ReLU"),
    "relu6": _simple("keras.layers.ReLU", Pair("max_value", num(6.0))),
    "tanh": _simple("keras.layers.Activation", string("tanh")),
    "sigmoid": _simple("keras.layers.Activation", string("sigmoid")),
    "silu": _simple("keras.layers.Activation", string("silu")),
    "hardswish": _simple("keras.layers.Activation", string("hard_swish")),  # relu6(x + 3) / 6
    "hardsigmoid": _simple("keras.layers.Activation", string("hard_sigmoid")),  # Keras 3's
    "mish": _simple("keras.layers.Activation", string("mish")),
    "gelu": _layer("Gelu", lambda op: (Pair("approximate", repr(op.approximate == "tanh")),)),
    "leaky_relu": _layer(
        "keras.layers.LeakyReLU", lambda op: (Pair("negative_slope", num(op.slope)),)
    ),
    "softmax": _simple("keras.layers.Softmax", Pair("axis", "-1")),
    "resize": _layer("Resize", _resize_args),  # interpolates in the compute dtype
    "concat": _simple("keras.layers.Concatenate", Pair("axis", "-1")),
    "conv_transpose": _conv_transpose,
    "upsample": _upsample,
    "add": _elementwise("keras.layers.Add"),
    "mul": _elementwise("keras.layers.Multiply"),
    "chunk": _layer("Chunk", lambda op: (num(op.chunks), num(op.part))),
    "channel_shuffle": _layer("ChannelShuffle", lambda op: (num(op.groups),)),
    "window_attention": _layer(
        "ShiftedWindowAttention", lambda op: _kws(op, "heads", "window", "shift")
    ),
    "space_to_depth": _layer("SpaceToDepth", lambda op: (num(op.block),)),
    "to_tokens": _simple("ToTokens"),
    "to_map": _layer("ToMap", lambda op: (num(op.height), num(op.width))),
    "token": _layer("SelectToken", lambda op: (num(op.index),)),
    "mean_tokens": _simple("MeanTokens"),
    "class_token": _simple("ClassToken"),
    "position_embedding": _layer("PositionEmbedding", lambda op: (Pair("std", num(op.std)),)),
    "attention": _layer("SelfAttention", _attention_args),
    "embedding": _embedding,
    "lstm": _recurrent,
    "gru": _recurrent,
    "reshape": _reshape,
    "permute": _layer("Permute", lambda op: (tup(op.axes),)),
}


# ----------------------------------------------------------------------------- flatten order

# ops that keep every feature of a vector itself (their specs say so; softmax is
# permutation-equivariant), and concat, which keeps them at an offset: a flattened map's
# feature order passes through them
ORDER_PRESERVING = {name for name, spec in REGISTRY.items() if spec.feature_wise} | {"concat"}


def observed_flattens(graph: ir.Graph, report: Report) -> set[str]:
    """The flattens whose feature order would show: Keras flattens H, W, C and the spec C, H,
    W, which a dense layer absorbs in its weights (the portable file permutes them), but a
    model output or an `add` would expose; those flatten in C, H, W order (FlattenCHW)."""
    readers: dict[str, list[ir.Statement]] = {}
    built = [s for s in report.order if s.name in report.live]
    for stmt in built:
        for name in dict.fromkeys(stmt.inputs):
            readers.setdefault(name, []).append(stmt)
    layers = report.by_statement()
    observed = set()
    for stmt in built:
        for index, (op, layer) in enumerate(zip(stmt.ops, layers[stmt.name], strict=True)):
            shape = layer.input_shape
            permuted = (
                op.op == "flatten" and len(shape) == 3 and min(shape[0], shape[1] * shape[2]) > 1
            )
            if permuted and _exposes(stmt, index + 1, graph.output, readers):
                observed.add(layer.name)
    return observed


def _exposes(stmt: ir.Statement, start: int, output: str, readers: dict) -> bool:
    """Whether the features leaving op `start - 1` of `stmt` reach the output or an op that
    mixes or compares them (an `add`) before every path meets a dense layer."""
    pending, seen = [(stmt, start)], set()
    while pending:
        current, index = pending.pop()
        if (current.name, index) in seen:
            continue
        seen.add((current.name, index))
        stop = next((op.op for op in current.ops[index:] if op.op not in ORDER_PRESERVING), None)
        if stop is not None and stop != "dense" or stop is None and current.name == output:
            return True
        if stop is None:
            pending += [
                (r, 1 if r.ops[0].op == "concat" else 0) for r in readers.get(current.name, ())
            ]
    return False


# ----------------------------------------------------------------------------- build_model


def _keras_shape(shape: Shape) -> Shape:
    """An IR shape in Keras's channels-last order: (H, W, C) for maps."""
    return (*shape[1:], shape[0]) if len(shape) == 3 else tuple(shape)


def _hwc(shape: Shape) -> str:
    """A shape comment: H x W x C for maps."""
    return " x ".join(str(d) for d in _keras_shape(shape))


def _identifier(name: str) -> str:
    """A name pasted into code (variables, comments, docstrings); the front end checked it."""
    if not name.isidentifier() or not name.isascii() or keyword.iskeyword(name):
        raise ValueError(f"{name!r} is not a safe Python identifier")
    return name


def _variables(graph: ir.Graph) -> dict[str, str]:
    """A Python variable per input and statement (pysource.variables)."""
    return variable_names([n.name for n in (*graph.inputs, *graph.statements)], RESERVED)


def _input_lines(graph: ir.Graph, variables: dict[str, str]) -> list[str]:
    lines = []
    for index, inp in enumerate(graph.inputs):
        shape = "INPUT_SHAPE" if index == 0 else tup(_keras_shape(inp.shape))
        ids = (Pair("dtype", string("int32")),) if inp.vocab else ()
        call = Call("keras.Input", (Pair("shape", shape), *ids, _name(inp.name)))
        lines.append(statement(call, BODY, f"{variables[inp.name]} = ", _hwc(inp.shape)))
    return lines


def _statement_lines(
    stmt,
    layers,
    value: dict[str, str],
    var: str,
    softmax_last: bool,
    observed: set[str],
    masked: dict[str, str],
):
    """The lines of one statement, and every layer call in it; updates `value`. A layer
    named in `masked` also gets that padding mask."""
    lines, calls = [], []
    current: Code = (
        value[stmt.inputs[0]]
        if len(stmt.inputs) == 1
        else Seq("[]", tuple(value[n] for n in stmt.inputs))
    )
    for index, (op, label, layer) in enumerate(zip(stmt.ops, op_labels(stmt), layers, strict=True)):
        if softmax_last and index == len(stmt.ops) - 1:
            lines.append(
                f"{' ' * BODY}# {layer.name}: applied by predict(); the model outputs logits"
            )
            continue
        mask = (Pair("mask", masked[layer.name]),) if layer.name in masked else ()
        for step in _steps(op, label, layer, stmt.name, observed):
            code = Call(step.layer, (current, *mask))
            lines.append(statement(code, BODY, f"{var} = ", _hwc(step.shape)))
            calls.append(step.layer)
            current = var
    value[stmt.name] = current
    return lines, calls


def _steps(op, label: str, layer: Layer, statement_name: str, observed: set[str]) -> list[Step]:
    """The layers of one op (a flatten whose order would show is the runtime's FlattenCHW)."""
    build = _flatten_chw if layer.name in observed else LAYERS[op.op]
    return build(op, layer, f"{statement_name}.{label}")


def _builders(graph: ir.Graph, report: Report, taken: set[str]) -> tuple[Plan, dict[str, str]]:
    """Which blocks run as builder functions, and the text of each the model calls; a block
    whose function would need a line longer than ruff's is written out instead, as are the
    calls of a model with towers."""
    if any(s.tower is not None for s in graph.statements):
        return Plan({}, {}, {}, {}), {}
    facts = {s.name: () for s in report.order if s.name in report.live}
    forms = {b.name: b for b in graph.blocks}
    names = {s.name for s in graph.statements}
    reserved = ARGUMENTS_RESERVED | RESERVED
    excluded = masked_blocks(report)
    while True:
        blocks = plan(graph, facts, lambda block: block, taken, reserved, excluded)
        texts = {b: function_text(blocks, forms[b]) for b in used_units(blocks, forms, names)}
        long = {b for b, text in texts.items() if too_long(text, WIDTH)}
        if not long:
            return blocks, texts
        excluded |= long


def _group_lines(blocks: Plan, top: str, value: dict, var: str, build, report: Report, names):
    """The calls of a top-level statement run as builder functions, one line each (`build(path,
    source)` is a call's code); updates `value` with the statement's output."""
    source, output = blocks.groups[top]
    paths = calls_under(top, blocks.calls, names)
    # each call reads the one before it: a call's output is the next one's source
    ends = [blocks.calls[p].source for p in paths[1:]] + [output]
    current, lines, calls = value[source], [], []
    for path, end in zip(paths, ends, strict=True):
        code = build(path, current)
        lines.append(statement(code, BODY, f"{var} = ", _hwc(report.outputs[end])))
        calls.append(code)
        current = var
    value[output] = var
    return lines, calls


def _build_model(graph: ir.Graph, report: Report) -> tuple[str, list[Call], dict[str, str]]:
    """build_model()'s text, every layer call in it, and the builder functions it calls."""
    variables = _variables(graph)
    tops = dict.fromkeys(s.name.split(".")[0] for s in graph.statements if "." in s.name)
    named = variable_names(tops, set(variables.values()) | RESERVED)
    taken = RESERVED | MODULE_NAMES | {graph.name} | set(variables.values()) | set(named.values())
    blocks, functions = _builders(graph, report, taken)
    value = {i.name: variables[i.name] for i in graph.inputs}
    by_statement = report.by_statement()
    softmax = trailing_softmax(graph)
    observed = observed_flattens(graph, report)
    statements = {s.name: s for s in graph.statements}
    names = set(statements)
    forms = {b.name: b for b in graph.blocks}

    def layer_calls(name: str) -> list[Code]:
        """The constructed layers of one statement."""
        stmt = statements[name]
        labelled = zip(stmt.ops, op_labels(stmt), by_statement[name], strict=True)
        return [st.layer for o, lab, lay in labelled for st in _steps(o, lab, lay, name, observed)]

    def build(path: str, source: Code) -> Code:
        """One block call's code in build_model."""
        return call_code(blocks, path, source, forms, names, layer_calls)

    masked, mask_lines, calls = _masks(report, variables, taken)
    parts = ["\n".join(_input_lines(graph, variables) + mask_lines)]
    for stmt in report.order:
        if stmt.name not in report.live:
            parts.append(f"{' ' * BODY}# {stmt.name} never reaches the output: not built")
            continue
        top = stmt.name.split(".")[0]
        if top in blocks.groups:
            if blocks.groups[top][1] == stmt.name:  # the group's last statement: run it here
                lines, more = _group_lines(blocks, top, value, named[top], build, report, names)
                parts.append("\n".join(lines))
                calls += more
            continue
        last = softmax and stmt.name == graph.output
        lines, more = _statement_lines(
            stmt, by_statement[stmt.name], value, variables[stmt.name], last, observed, masked
        )
        parts.append("\n".join(lines))
        calls += more
    inputs = [variables[i.name] for i in graph.inputs]
    model_inputs = inputs[0] if len(inputs) == 1 else Seq("[]", tuple(inputs))
    model = Call("keras.Model", (model_inputs, value[graph.output], Pair("name", "MODEL_NAME")))
    doc = f"{graph.name} as a functional keras.Model, channels-last; it outputs logits."
    if graph.train.freeze:  # the train block's: not trainable (batch norms in inference mode)
        parts.append(statement(model, BODY, "model = "))
        model = Call("freeze_statements", ("model", literal(list(graph.train.freeze))))
        calls.append(model)
    parts.append(statement(model, BODY, "return "))
    return _function("build_model()", doc, "\n\n".join(parts)), calls, functions


def _masks(report: Report, variables: dict[str, str], taken: set[str]):
    """({layer name: mask variable} for the layers that skip padding, the lines computing
    each token input's mask, their calls)."""
    received = masks(report)
    spelt: dict[tuple[str, int], str] = {}
    lines, calls = [], []
    for source, padding in dict.fromkeys(received.values()):
        variable = f"{variables[source]}_mask"
        while variable in taken or variable in spelt.values():
            variable += "_"
        spelt[(source, padding)] = variable
        call = Call("real_tokens", (variables[source], num(padding)))
        lines.append(statement(call, BODY, f"{variable} = "))
        calls.append(call)
    return {name: spelt[mask] for name, mask in received.items()}, lines, calls


# ----------------------------------------------------------------------------- recipe


def _optimizer_call(train: ir.Train) -> Call:
    """The optimizer's constructor (global_clipnorm: the runtime's clip as torch clips); the
    learning rate may be overridden by the caller."""
    call = _rule_call(train.optimizer)
    if train.clip_grad_norm is None:
        return call
    return Call(call.func, (*call.args, Pair("global_clipnorm", num(train.clip_grad_norm))))


def _rule_call(opt) -> Call:
    """The optimizer's constructor without clipping."""
    lr = Pair("learning_rate", f"{num(opt.lr)} if lr is None else lr")
    decay = Pair("weight_decay", num(opt.weight_decay))
    if opt.name == "sgd":
        cls = "PaperSGD" if opt.rule == "paper" else "TorchSGD"
        momentum = Pair("momentum", num(opt.momentum))
        return Call(cls, (lr, momentum, decay, Pair("nesterov", repr(opt.nesterov))))
    if opt.name == "rmsprop":
        cls = "TorchRMSprop" if opt.rule == "torch" else "TFRMSprop"
        keys = ("alpha", "eps", "momentum")
        options = (Pair("epsilon" if k == "eps" else k, num(getattr(opt, k))) for k in keys)
        return Call(cls, (lr, *options, decay))
    cls = "L2Adam" if opt.name == "adam" else "TorchAdamW"
    betas = Pair("beta_1", num(opt.beta1)), Pair("beta_2", num(opt.beta2))
    return Call(cls, (lr, *betas, Pair("epsilon", num(opt.eps)), decay))


def _doc_key(opt) -> str:
    """OPTIMIZER_DOCS's key of an optimizer: sgd's rule, rmsprop/RULE or the name."""
    if opt.name == "sgd":
        return opt.rule
    return f"rmsprop/{opt.rule}" if opt.name == "rmsprop" else opt.name


def _build_optimizer(train: ir.Train) -> tuple[str, list[Call]]:
    """build_optimizer()'s text and its calls."""
    opt, call = train.optimizer, _optimizer_call(train)
    doc = OPTIMIZER_DOCS[_doc_key(opt)]
    signature = "build_optimizer(model, lr=None)"
    wrappers = []
    if opt.no_decay:
        wrappers.append(
            Call("exclude_from_decay", ("optimizer", "model", literal(list(opt.no_decay))))
        )
    if train.lr_scale:  # each variable's rate times its statement's factor
        wrappers.append(Call("scale_rates", ("optimizer", "model", literal(dict(train.lr_scale)))))
    if not wrappers:
        return _function(signature, doc, statement(call, BODY, "return ")), [call]
    body = [statement(c, BODY, "optimizer = ") for c in (call, *wrappers[:-1])]
    body.append(statement(wrappers[-1], BODY, "return "))
    return _function(signature, doc, "\n".join(body)), [call, *wrappers]


def _scheduler_call(train: ir.Train) -> Call | None:
    """The runtime schedule's constructor, or None for a constant rate."""
    s = train.schedule
    if s.name == "none":
        return None
    if s.name == "on_plateau":
        keys = ("factor", "patience", "metric", "max_drops", "min_delta")
        return Call("OnPlateau", ("optimizer", *(Pair(k, literal(getattr(s, k))) for k in keys)))
    if s.name == "step":
        args = (Pair("step_size", num(s.step_size)), Pair("gamma", num(s.gamma)))
        return Call("StepDecay", ("optimizer", *args))
    if s.name == "multistep":
        args = (Pair("milestones", literal(list(s.milestones))), Pair("gamma", num(s.gamma)))
        return Call("MultiStep", ("optimizer", *args))
    args = (Pair("epochs", num(train.epochs)), Pair("min_lr", num(s.min_lr)))
    warmup = (Pair("warmup", num(s.warmup)), Pair("warmup_factor", num(s.warmup_factor)))
    return Call("Cosine", ("optimizer", *args, *(warmup if s.warmup else ())))


def _build_scheduler(train: ir.Train) -> tuple[str, list[Call]]:
    """build_scheduler()'s text and its calls."""
    call = _scheduler_call(train)
    doc = SCHEDULER_DOCS[train.schedule.name]
    if call is None:  # the docstring alone: the function returns None
        return _function("build_scheduler(optimizer)", doc, ""), []
    return _function("build_scheduler(optimizer)", doc, statement(call, BODY, "return ")), [call]


# ----------------------------------------------------------------------------- the module


def _function(signature: str, doc: str, body: str) -> str:
    text = f'def {signature}:\n{" " * BODY}"""{doc}"""'
    return f"{text}\n{body}" if body else text


def _callees(codes) -> set[str]:
    """Every name called anywhere in the trees."""
    found, stack = set(), list(codes)
    while stack:
        code = stack.pop()
        if isinstance(code, Call):
            if isinstance(code.func, str):
                found.add(code.func)
            stack += [code.func, *code.args]
        elif isinstance(code, Seq):
            stack += code.items
        elif isinstance(code, Pair):
            stack.append(code.value)
    return found


def _imports(used: set[str]) -> str:
    """`import keras`, then the runtime imports in an isort block of their own."""
    # isort calls the runtime first- or third-party depending on where it runs: keep it apart.
    lines = []
    for module in sorted(set(RUNTIME.values())):
        names = sorted((n for n in used if RUNTIME.get(n) == module), key=_isort_key)
        line = f"from {module} import {', '.join(names)}"
        if len(line) > WIDTH:  # as ruff's isort wraps it
            line = "\n".join([f"from {module} import (", *(f"    {n}," for n in names), ")"])
        if names:
            lines.append(line)
    # portable weights (archdsl weights): re-exported as the model's own save/load functions
    lines.append("from weights import load_weights, save_weights  # noqa: F401")
    first = ["from functools import partial", ""] if PARTIAL in used else []
    return "\n".join([*first, "import keras", "", *SPLIT, *lines])


def _isort_key(name: str) -> tuple[int, str]:
    """Classes before functions, then case-insensitive (ruff's isort defaults)."""
    return (0 if name[:1].isupper() else 1, name.lower())


def _constants(graph: ir.Graph, report: Report, spec_name: str) -> str:
    first = graph.inputs[0]
    output = report.outputs.get(graph.output) or next(
        i.shape for i in graph.inputs if i.name == graph.output
    )
    lines = [
        statement(string(graph.name), 0, "MODEL_NAME = "),
        statement(string(spec_name), 0, "SPEC = "),
        statement(tup(_keras_shape(first.shape)), 0, "INPUT_SHAPE = "),
        statement(tup(_keras_shape(output)), 0, "OUTPUT_SHAPE = "),
        f"NUM_CLASSES = {num(output[0])}",
        *vocab_line(graph),
        statement(literal(train_data(graph.train)), 0, "TRAIN = "),
    ]
    return "\n".join(lines)


def _predict(graph: ir.Graph) -> str:
    if trailing_softmax(graph):
        doc = "Class probabilities: the spec's trailing softmax on the model's logits."
        body = "return keras.ops.softmax(model(x, training=False), axis=-1)"
    else:
        doc = "The model's outputs: the spec ends without a softmax."
        body = "return model(x, training=False)"
    return _function("predict(model, x)", doc, " " * BODY + body)


def render_model(graph: ir.Graph, report: Report, spec_name: str) -> str:
    """The text of model.py (see backends/CONTRACT.md) for a graph that checked cleanly."""
    _identifier(graph.name)
    model, calls, functions = _build_model(graph, report)
    optimizer, optimizer_calls = _build_optimizer(graph.train)
    scheduler, scheduler_calls = _build_scheduler(graph.train)
    used = _callees([*calls, *optimizer_calls, *scheduler_calls])
    header = (
        f"# Generated by archdsl from {string(spec_name)}: edit the spec and recompile.\n"
        f'"""{graph.name} for Keras 3: the network, its initialisers and its training recipe."""'
    )
    parts = [
        f"{header}\n\n{_imports(used)}\n\n{_constants(graph, report, spec_name)}",
        *([ADAPTIVE_CLASS] if ADAPTIVE in used else []),
        *([RUN_FUNCTION, *functions.values()] if functions else []),
        model,
        _predict(graph),
        optimizer,
        scheduler,
    ]
    return "\n\n\n".join(parts) + "\n"
