"""Random specs, seeded and deterministic: valid ones over every op and option of the language,
and mutations of them that the tracker calls invalid.

Specs grow one action at a time (a chain of ops, a branch `from` an earlier statement, a
concat / add of statements that fit, a repeated block, towers); after each the tracker says
whether the spec so far is valid, and an action that is not is drawn again. Sizes stay small
(maps up to 16 x 16 before a resize, a few channels) so both frameworks run them fast.
"""

from __future__ import annotations

import copy
import math
import random

from . import tracker
from .spec import Block, Call, IfFirst, Init, Op, Ref, Spec, Stmt, Towers

# the arguments this generator writes, per op: a test fails when the language has an op or an
# argument that is not here (tracker.OPS must know it too)
ARGUMENTS: dict[str, tuple] = {
    "conv": ("filters", "kernel", "stride", "pad", "dilation", "groups", "bias", "weight", "ceil"),
    "maxpool": ("kernel", "stride", "pad", "ceil"),
    "avgpool": ("kernel", "stride", "pad", "ceil", "count_pad"),
    "global_avgpool": (),
    "adaptive_avgpool": ("size",),
    "lrn": ("size", "alpha", "beta", "k"),
    "batchnorm": ("eps", "momentum"),
    "layernorm": ("eps",),
    "layer_scale": ("init",),
    "dropout": ("p",),
    "stochastic_depth": ("p",),
    "flatten": (),
    "dense": ("units", "bias", "weight"),
    "relu": (),
    "relu6": (),
    "tanh": (),
    "sigmoid": (),
    "silu": (),
    "hardswish": (),
    "hardsigmoid": (),
    "mish": (),
    "leaky_relu": ("slope",),
    "gelu": ("approximate",),
    "softmax": (),
    "resize": ("size", "mode"),
    "conv_transpose": (
        "filters",
        "kernel",
        "stride",
        "pad",
        "output_pad",
        "groups",
        "dilation",
        "bias",
        "weight",
    ),
    "upsample": ("scale", "mode", "align_corners"),
    "chunk": ("chunks", "part"),
    "channel_shuffle": ("groups",),
    "to_tokens": (),
    "to_map": ("height", "width"),
    "token": ("index",),
    "mean_tokens": (),
    "class_token": (),
    "position_embedding": ("std",),
    "attention": ("heads", "dropout", "bias"),
    "concat": (),
    "add": (),
    "mul": (),
}
ACTIVATIONS = ("relu", "relu6", "tanh", "sigmoid", "leaky_relu", "softmax")
# issue 12's activations and per-channel ops, drawn as often as one of the above together
MODERN = ("silu", "hardswish", "hardsigmoid", "mish", "gelu", "layernorm", "layer_scale")
# issue 13's ops on L x D token sequences (and the others that take them)
ON_TOKENS = ("attention", "attention", "dense", "layernorm", "class_token", "position_embedding")
ON_TOKENS += ("position_embedding", "token", "mean_tokens", "mean_tokens", "to_map", "to_map")
ON_TOKENS += ("gelu", "relu", "dropout", "flatten")
# weight initialisers keep some spread (calibration rescales them: constant ones would not)
WEIGHT_INITS = (
    Init("normal", (("std", 0.05),)),
    Init("normal", (("mean", 0.01), ("std", 0.1))),
    Init("uniform", (("low", -0.1), ("high", 0.2))),
    Init("he_normal"),
    Init("he_normal", (("mode", "fan_out"),)),
    Init("he_uniform"),
    Init("glorot_normal"),
    Init("glorot_uniform"),
    Init("fan_in_uniform", (("scale", 2.0),)),
)
BIAS_INITS = (Init("zeros"), Init("ones"), Init("constant", (("value", 0.1),)), *WEIGHT_INITS[:2])
WORDS = ("feat", "conv", "branch", "mix", "head", "side", "pool", "stem")
# statement names `check` accepts that the generated code also uses (runtime classes and
# modules, imports, model.py's own names, language words): the emitters must keep them apart
TRICKY_NAMES = (
    "Resize",
    "BatchNorm",
    "OrderedDict",
    "layers",
    "weights",
    "os",
    "x_",
    "out",
    "build_model",
    "predict",
    "TRAIN",
    "INPUT_SHAPE",
    "merge",
    "index",
    "inputs",
    "PaperSGD",
    "load_weights",
)
INPUT_NAMES = ("x", "image", "img", "pixels", "x", "image", "inputs", "layers", "INPUT_SHAPE")
SECOND_NAMES = ("aux", "extra", "side_in", "y", "x_", "Resize", "weights")
MAX_SIDE = 16
ATTEMPTS = 40


def positional_ops(rng: random.Random, kind: str, args: dict) -> Op:
    """An Op with a random number of its leading (signature-order) arguments positional."""
    order = [name for name, _, _ in tracker.OPS[kind]]
    ordered = {name: args[name] for name in order if name in args}
    leading = 0
    for name in order:
        if name not in ordered:
            break
        leading += 1
    return Op(kind, ordered, rng.randint(0, min(leading, 2)))


def size_arg(rng: random.Random, h: int, w: int):
    """`n` when square (half the time), else `H x W`."""
    return h if h == w and rng.random() < 0.5 else (h, w)


class Generator:
    """One random spec: Generator(seed).spec()."""

    def __init__(self, seed):
        """A generator drawing from random.Random(seed)."""
        self.rng = random.Random(seed)
        self.serial = 0
        self.tricky = list(TRICKY_NAMES)

    # ------------------------------------------------------------------ whole specs

    def spec(self) -> Spec:
        """A random valid spec (the tracker accepts it and the README says what it means)."""
        rng = self.rng
        while True:
            spec = Spec(f"Fuzz{rng.randint(0, 999)}", self.inputs(), [])
            if rng.random() < 0.25:
                spec.blocks.append(self.block())
                if rng.random() < 0.3:
                    spec.blocks.append(self.wrapper(spec.blocks[0]))
            for _ in range(rng.choice((1, 2, 2, 3, 3, 4, 5, 6))):
                self.grow(spec)
            self.head(spec)
            if self.valid(spec):
                if rng.random() < 0.1:
                    spec = self.shuffled(spec)
                self.expects(spec)
                return spec

    def shuffled(self, spec: Spec) -> Spec:
        """The same model with every statement's input written (`from`) and the statements
        before the last in random order: forward references, which the compiler orders."""
        if any(isinstance(item, Towers) for item in spec.items) or len(spec.items) < 3:
            return spec
        out = copy.deepcopy(spec)
        previous = out.inputs[0][0]
        for stmt in out.items:
            if not stmt.merge and not stmt.source:
                stmt.source = previous
            previous = stmt.name
        head = out.items[:-1]
        self.rng.shuffle(head)
        out.items = [*head, out.items[-1]]
        return out if self.valid(out) else spec

    def inputs(self) -> list:
        """One input (a map, now and then a vector), sometimes a second one."""
        rng = self.rng
        first = rng.choice(INPUT_NAMES)
        if rng.random() < 0.06:
            inputs = [(first, (rng.randint(1, 24),))]
        else:
            h = rng.choice((1, 2, 3, *range(4, MAX_SIDE + 1)))
            w = h if rng.random() < 0.6 else rng.randint(1, MAX_SIDE)
            inputs = [(first, (rng.randint(1, 4), h, w))]
        if rng.random() < 0.2:
            shape = inputs[0][1]
            second = rng.choice(
                [
                    (rng.randint(1, 4), *shape[1:]) if len(shape) == 3 else shape,
                    (rng.randint(1, 30),),
                    (rng.randint(1, 3), rng.randint(1, 9), rng.randint(1, 9)),
                ]
            )
            inputs.append((rng.choice(SECOND_NAMES), second))
        return inputs

    def name(self) -> str:
        """A fresh statement name (now and then one the generated code uses too)."""
        self.serial += 1
        if self.tricky and self.rng.random() < 0.04:
            return self.tricky.pop(self.rng.randrange(len(self.tricky)))
        return f"{self.rng.choice(WORDS)}{self.serial}"

    def prediction(self, spec: Spec):
        """The tracker's prediction, or None where the README leaves the spec open."""
        try:
            return tracker.predict(spec)
        except tracker.Undocumented:
            return None

    def valid(self, spec: Spec) -> bool:
        """Whether the tracker calls the spec valid (and the README covers it)."""
        found = self.prediction(spec)
        return found is not None and found.valid

    def shapes(self, spec: Spec) -> dict:
        """{name a statement may read: its shape} of the spec so far."""
        if not spec.items:
            return dict(spec.inputs)
        found = self.prediction(spec)
        names = {n for n, _ in spec.inputs} | {s.name for s in spec.statements()}
        return {n: s for n, s in found.shapes.items() if n in names}

    def previous(self, spec: Spec) -> str:
        """What a statement without `from` reads."""
        if not spec.items:
            return spec.inputs[0][0]
        last = spec.items[-1]
        return last.body[-1].name if isinstance(last, Towers) else last.name

    def grow(self, spec: Spec) -> None:
        """Add one random action that keeps the spec valid (or nothing, after many draws)."""
        actions = [self.chain] * 4 + [self.branch] * 2 + [self.merge] * 3
        actions += [self.flat_layouts, self.flat_fanout, self.unused]
        if spec.blocks:
            actions += [self.call] * 3
        if len(spec.inputs[0][1]) == 3 and not any(isinstance(i, Towers) for i in spec.items):
            actions.append(self.towers)
        for _ in range(ATTEMPTS):
            added = self.rng.choice(actions)(spec, self.shapes(spec))
            if added and self.valid(spec):
                return
            del spec.items[len(spec.items) - added :]

    # ------------------------------------------------------------------ actions
    # each appends items to spec.items and returns how many (0: nothing fits)

    def chain(self, spec, shapes) -> int:
        """A statement reading the previous one."""
        shape = shapes[self.previous(spec)]
        spec.items.append(Stmt(self.name(), self.ops(shape, self.rng.randint(1, 4))))
        return 1

    def branch(self, spec, shapes) -> int:
        """A statement reading an earlier statement or input (`from NAME`)."""
        source = self.rng.choice(sorted(shapes))
        ops = self.ops(shapes[source], self.rng.randint(1, 3))
        spec.items.append(Stmt(self.name(), ops, source=source))
        return 1

    def unused(self, spec, shapes) -> int:
        """A side statement, then one that reads around it: the side one is unused (W103)."""
        previous = self.previous(spec)
        side = Stmt(self.name(), self.ops(shapes[previous], 1))
        after = Stmt(self.name(), self.ops(shapes[previous], self.rng.randint(1, 2)))
        after.source = previous
        spec.items += [side, after]
        return 2

    def merge(self, spec, shapes) -> int:
        """concat, add or mul of statements that fit (add and mul broadcasting sizes of 1),
        making a sibling that fits when none does."""
        rng = self.rng
        kind = rng.choice(("concat", "add", "add", "mul"))
        first = rng.choice(sorted(shapes))
        shape = shapes[first]
        if kind == "concat" and len(shape) == 2:
            kind = "add"  # tokens do not concatenate (E018)
        fits = [n for n, s in sorted(shapes.items()) if n != first and fits_with(kind, shape, s)]
        added = 0
        if not fits or rng.random() < 0.4:
            sibling = Stmt(self.name(), self.sibling_ops(kind, shape), source=first)
            spec.items.append(sibling)
            fits, added = [sibling.name], 1
            shapes = {**shapes, sibling.name: chain_shape(sibling.ops, shape)}
        names = [first]
        for name in rng.sample(fits, min(len(fits), rng.choice((1, 1, 2)))):
            if fits_with(kind, *(shapes[n] for n in names), shapes[name]):
                names.append(name)
        rng.shuffle(names)
        merged = tracker.merged(kind, [shapes[n] for n in names], None)
        ops = self.ops(merged, rng.randint(0, 2))
        spec.items.append(Stmt(self.name(), ops, merge=(kind, names)))
        return added + 1

    def sibling_ops(self, kind: str, shape: tuple) -> list:
        """Ops that keep a map's H x W (concat) or its whole shape (add, mul), or a vector's
        size; for add and mul sometimes a C x 1 x 1 gate (squeeze-and-excitation) or 1 unit."""
        rng = self.rng
        elementwise = kind in ("add", "mul")
        if elementwise and rng.random() < 0.4:
            return self.gate(shape)
        if len(shape) == 1:
            units = shape[0] if elementwise else rng.randint(1, 12)
            return [Op("dense", {"units": units})] + self.pointwise(shape, rng.randint(0, 1))
        if len(shape) == 2:  # tokens: the element-wise merges only
            return [Op("dense", {"units": shape[1]}), Op(rng.choice(("gelu", "relu")))]
        filters = shape[0] if elementwise else rng.randint(1, 6)
        kernel = rng.choice((1, 3))
        pad = rng.choice((kernel // 2, "same")) if kernel > 1 else rng.choice((0, "valid", "same"))
        conv = positional_ops(rng, "conv", {"filters": filters, "kernel": kernel, "pad": pad})
        return [conv] + self.pointwise(shape, rng.randint(0, 2))

    def gate(self, shape: tuple) -> list:
        """What broadcasts over `shape`: a C x 1 x 1 gate of a map, one unit for a vector."""
        squash = Op(self.rng.choice(("sigmoid", "tanh", "relu")))
        if len(shape) <= 2:  # a vector's one unit, or one value per token
            return [Op("dense", {"units": 1}), squash]
        squeeze = max(shape[0] // 2, 1)
        return [
            Op("global_avgpool"),
            Op("conv", {"filters": squeeze, "kernel": 1}),
            Op("relu"),
            Op("conv", {"filters": shape[0], "kernel": 1}),
            squash,
        ]

    def flat_layouts(self, spec, shapes) -> int:
        """add / concat of a flattened map with a flattened map of another C x H x W layout
        (or with a vector), the features in the same number."""
        rng = self.rng
        maps = sorted(n for n, s in shapes.items() if len(s) == 3)
        if not maps:
            return 0
        first = rng.choice(maps)
        c, h, w = shapes[first]
        layouts = [
            f for f in factorizations(c * h * w) if f != (c, h, w) and max(f[1:]) <= MAX_SIDE
        ]
        flat = Stmt(self.name(), [Op("flatten")], source=first)
        other = Stmt(self.name(), [], source=first)
        if layouts and rng.random() < 0.7:
            c2, h2, w2 = rng.choice(layouts)
            other.ops = [
                Op("conv", {"filters": c2, "kernel": 1}, 2),
                Op("resize", {"size": (h2, w2), "mode": rng.choice(("bilinear", "nearest"))}, 1),
                Op("flatten"),
            ]
        else:
            other.ops = [Op("global_avgpool"), Op("flatten"), Op("dense", {"units": c * h * w})]
        kind = rng.choice(("add", "concat"))
        names = [flat.name, other.name]
        rng.shuffle(names)
        tail = self.pointwise((2,), rng.randint(0, 1))
        spec.items += [flat, other, Stmt(self.name(), tail, merge=(kind, names))]
        return 3

    def flat_fanout(self, spec, shapes) -> int:
        """A flattened map read by a dense layer and by feature-wise ops, merged again: where
        the flatten order is observable and where it is not, from one flatten."""
        rng = self.rng
        maps = sorted(n for n, s in shapes.items() if len(s) == 3 and s[0] > 1 and s[1] * s[2] > 1)
        if not maps:
            return 0
        source = rng.choice(maps)
        features = math.prod(shapes[source])
        flat = Stmt(self.name(), [Op("flatten"), *self.pointwise((2,), rng.randint(0, 1))])
        flat.source = source
        kind = rng.choice(("add", "concat"))
        units = features if kind == "add" else rng.randint(1, 9)
        dense = Stmt(self.name(), [Op("dense", {"units": units})], source=flat.name)
        side = Stmt(self.name(), self.pointwise((2,), rng.randint(1, 2)), source=flat.name)
        names = [dense.name, side.name]
        rng.shuffle(names)
        tail = rng.choice(([], [Op("relu")], [Op("dense", {"units": rng.randint(1, 6)})]))
        spec.items += [flat, dense, side, Stmt(self.name(), tail, merge=(kind, names))]
        return 4

    def call(self, spec, shapes) -> int:
        """A call of one of the spec's blocks, repeated (`* N`) or once."""
        rng = self.rng
        block = rng.choice(spec.blocks)
        source = self.previous(spec)
        if rng.random() < 0.3:
            source = rng.choice(sorted(shapes))
        shape = shapes[source]
        if len(shape) != 3:
            return 0
        args = {"w": shape[0] if rng.random() < 0.5 else rng.randint(1, 5)}
        repeat = rng.choice((None, 2, 2, 3))
        if block.name == "unit" and rng.random() < 0.5:
            args["k"] = rng.choice((1, (1, 3), (5, 2), IfFirst((3, 1), 3)))
            args["p"] = rng.choice((0.1, 0.9))
        if any(p[0] == "project" for p in block.params):
            args["stride"] = IfFirst(rng.choice((1, 2)), 1) if repeat else rng.choice((1, 2))
            args["project"] = IfFirst(True, False) if repeat else True
        stmt = Stmt(self.name(), call=Call(block.name, args, repeat))
        if source != self.previous(spec):
            stmt.source = source
        spec.items.append(stmt)
        return 1

    def towers(self, spec, shapes) -> int:
        """towers 2 (or 3) { a few conv / pool / lrn statements, maybe a merge }, then a
        statement outside that reads the towers' concatenation."""
        rng = self.rng
        shape = shapes[self.previous(spec)]
        if len(shape) != 3:
            return 0
        body = []
        for index in range(rng.randint(1, 3)):
            stmt = Stmt(self.name(), self.tower_ops(shape))
            choice = rng.random()
            if index and choice < 0.4:
                stmt.tower_merge = True
            elif index and choice < 0.55:  # per tower: concat of this tower's statements
                stmt.merge = ("concat", [body[-1].name, body[0].name])
            elif index > 1 and choice < 0.65:
                stmt.source = body[0].name
            body.append(stmt)
            shape = (shape[0] * 2, *shape[1:])
        spec.items.append(Towers(rng.choice((2, 2, 3)), body))
        spec.items.append(Stmt(self.name(), [rng.choice((Op("relu"), Op("batchnorm")))]))
        return 2

    def tower_ops(self, shape: tuple) -> list:
        """A conv with `same` padding, then relu, lrn or batchnorm, maybe a pool."""
        rng = self.rng
        conv = {"filters": rng.randint(1, 3), "kernel": rng.choice((1, 3)), "pad": "same"}
        ops = [positional_ops(rng, "conv", conv)]
        ops += rng.sample([Op("relu"), Op("lrn", {"size": 3, "alpha": 0.01}), Op("batchnorm")], 1)
        if min(shape[1:]) >= 2 and rng.random() < 0.4:
            ops.append(Op("maxpool", {"kernel": 2, "stride": 1}))
        return ops

    def head(self, spec: Spec) -> None:
        """The last statement: a map, a classifier, or a flattened map (softmax or not)."""
        rng = self.rng
        shape = self.shapes(spec)[self.previous(spec)] if spec.items else spec.inputs[0][1]
        options = [[Op("dense", {"units": rng.randint(1, 10)})]]
        if len(shape) == 3:
            options += [
                [Op("global_avgpool"), Op("flatten"), Op("dense", {"units": rng.randint(1, 10)})],
                [Op("flatten"), Op("dense", {"units": rng.randint(1, 10)})],
                [Op("flatten")],
                self.ops(shape, 1),
            ]
        else:
            options.append(self.ops(shape, 1))
        ops = rng.choice(options)
        if rng.random() < 0.3:
            ops = ops + [Op(rng.choice(("softmax", "relu", "sigmoid")))]
        if not spec.items or isinstance(spec.items[-1], Towers) or rng.random() < 0.6:
            spec.items.append(Stmt(self.name(), ops))

    def expects(self, spec: Spec) -> None:
        """`expect` the tracker's shape on a few top-level statements."""
        shapes = self.prediction(spec).shapes
        for stmt in spec.items:
            if isinstance(stmt, Stmt) and not stmt.call and self.rng.random() < 0.1:
                stmt.expect = shapes[stmt.name]

    # ------------------------------------------------------------------ blocks

    def block(self) -> Block:
        """A residual unit, a projection unit with conditions, or a plain stage."""
        rng = self.rng
        kind = rng.choice(("unit", "down", "stage"))
        width = Ref("w")
        if kind == "unit":  # parameters of every type, and expressions of them
            conv = {"filters": width, "kernel": Ref("k"), "pad": Ref("pad")}
            a = Stmt("a", [Op("conv", conv, 1), Op("dropout", {"p": Ref("p")})])
            a.ops += self.pointwise((2,), rng.randint(0, 2), maps=True)
            filters = rng.choice((Ref("w", 2, 2), Ref("w", 3, 3, 0), Ref("w", 1, 1, 1)))
            b = Stmt("b", [Op("conv", {"filters": filters, "kernel": 1})], source="in")
            if filters.plus:
                b.ops.append(Op("conv", {"filters": Ref("w", 1, 1, 0), "kernel": 1}))
            params = [
                ("w", "int", None),
                ("k", "size", (3, 3)),
                ("pad", "name", "same"),
                ("p", "float", 0.5),
            ]
            return Block("unit", params, [a, b, Stmt("out", [], merge=("add", ["a", "b"]))])
        if kind == "down":
            stride = Ref("stride")
            a = Stmt("a", [Op("conv", {"filters": width, "kernel": 3, "stride": stride, "pad": 1})])
            a.ops.append(Op("batchnorm"))
            a.ops += self.pointwise((2,), 1, maps=True)
            b = Stmt("b", [Op("conv", {"filters": width, "kernel": 1, "bias": False})])
            sc = Stmt("sc", [Op("conv", {"filters": width, "kernel": 1, "stride": stride})])
            sc.source, sc.cond = "in", ("project", True)
            out1 = Stmt("out", [Op("relu")], merge=("add", ["b", "sc"]), cond=("project", True))
            out2 = Stmt("out", [Op("relu")], merge=("add", ["b", "in"]), cond=("project", False))
            params = [("w", "int", None), ("stride", "int", 1), ("project", "bool", False)]
            return Block("down", params, [a, b, sc, out1, out2])
        a = Stmt("a", [Op("conv", {"filters": width, "kernel": 3, "pad": "same"})])
        pool = Op("maxpool", {"kernel": 2, "ceil": True})
        b = Stmt("b", [Op("conv", {"filters": Ref("w", 2), "kernel": 1}), pool])
        return Block("stage", [("w", "int", None)], [a, b])

    def wrapper(self, inner: Block) -> Block:
        """A block that calls `inner` (blocks may call blocks), repeated or once."""
        args = {"w": Ref("w")}
        if inner.name == "down":
            args |= {"stride": IfFirst(2, 1), "project": IfFirst(True, False)}
        body = [
            Stmt("pre", [Op("conv", {"filters": Ref("w"), "kernel": 1}, 1), Op("relu")]),
            Stmt("body", call=Call(inner.name, args, self.rng.choice((None, 2)))),
            Stmt("post", [Op("batchnorm")]),
        ]
        return Block("wrap", [("w", "int", None)], body)

    # ------------------------------------------------------------------ ops

    def ops(self, shape: tuple, count: int) -> list:
        """`count` random ops, each valid on the shape the one before gives."""
        out = []
        for _ in range(count):
            op = self.op(shape)
            try:
                args = tracker.bind(op.kind, op, None)
                shape = tracker.apply_op(op.kind, args, shape, None)[0]
            except (tracker.SpecError, tracker.Undocumented):
                continue
            out.append(op)
        return out or [Op("relu")]

    def op(self, shape: tuple) -> Op:
        """One random op (and its arguments) for a map or a vector."""
        rng = self.rng
        if len(shape) == 2:
            kind = rng.choice(ON_TOKENS)
        elif len(shape) == 1:
            kind = rng.choice(
                ["dense"] * 4
                + ["batchnorm", "dropout", "flatten", "chunk", *ACTIVATIONS, "relu"]
                + ["modern", "modern"]
            )
        else:
            kind = rng.choice(
                ["conv"] * 6
                + ["maxpool", "avgpool", "avgpool", "adaptive_avgpool", "lrn"] * 2
                + ["global_avgpool", "batchnorm", "dropout", "stochastic_depth"]
                + ["flatten", "resize", "resize", *ACTIVATIONS, "modern", "modern"]
                + ["conv_transpose", "conv_transpose", "upsample", "upsample"]
                + ["chunk", "channel_shuffle", "to_tokens", "to_tokens"]
            )
        if kind == "modern":
            kind = rng.choice(MODERN)
        if kind == "softmax" and shape[0] == 1:
            kind = "relu"  # a softmax over one value is the constant 1: nothing to compare
        return positional_ops(rng, kind, getattr(self, f"args_{kind}", lambda s: {})(shape))

    def pointwise(self, shape: tuple, count: int, maps: bool = False) -> list:
        """Ops that keep the shape."""
        kinds = ["batchnorm", "dropout", *ACTIVATIONS, self.rng.choice(MODERN)]
        kinds += ["lrn", "stochastic_depth"] if maps else []
        if shape[0] == 1:
            kinds.remove("softmax")
        return [
            positional_ops(self.rng, k, getattr(self, f"args_{k}", lambda s: {})(shape))
            for k in self.rng.sample(kinds, count)
        ]

    def args_to_map(self, shape) -> dict:
        """A height and width whose product is the number of tokens."""
        height = self.rng.choice([d for d in range(1, shape[0] + 1) if shape[0] % d == 0])
        return {"height": height, "width": shape[0] // height}

    def args_token(self, shape) -> dict:
        """One of the tokens (the first half the time: a class token's place)."""
        return {"index": 0 if self.rng.random() < 0.5 else self.rng.randrange(shape[0])}

    def args_position_embedding(self, shape) -> dict:
        """The default std, or another."""
        return {"std": 0.5} if self.rng.random() < 0.5 else {}

    def args_attention(self, shape) -> dict:
        """Heads that divide D, at times dropout and no bias."""
        heads = self.rng.choice([h for h in range(1, shape[1] + 1) if shape[1] % h == 0][:4])
        args = {"heads": heads}
        if self.rng.random() < 0.3:
            args["dropout"] = 0.1
        if self.rng.random() < 0.3:
            args["bias"] = self.rng.choice((False, True))
        return args

    def args_chunk(self, shape) -> dict:
        """A number of chunks that divides the channels (1 at times), and one of them."""
        chunks = self.rng.choice([d for d in range(1, shape[0] + 1) if shape[0] % d == 0][:4])
        return {"chunks": chunks, "part": self.rng.randrange(chunks)}

    def args_channel_shuffle(self, shape) -> dict:
        """A number of groups that divides the channels (more than 1 where there is one)."""
        divisors = [d for d in range(2, shape[0] + 1) if shape[0] % d == 0]
        return {"groups": self.rng.choice(divisors or [1])}

    def args_conv(self, shape) -> dict:
        """Groups, filters, a kernel within the padded map, every padding form, bias, ceil."""
        rng = self.rng
        channels, h, w = shape
        args = {}
        groups = rng.choice([g for g in range(1, channels + 1) if channels % g == 0])
        if groups > 1 and rng.random() < 0.6:
            args["groups"] = groups
        else:
            groups = 1
        args["filters"] = groups * rng.randint(1, max(1, 6 // groups))
        kh, kw = rng.randint(1, min(5, h + 2)), rng.randint(1, min(5, w + 2))
        args["kernel"] = size_arg(rng, kh, kw)
        if rng.random() < 0.4:
            args["stride"] = size_arg(rng, rng.randint(1, 3), rng.randint(1, 3))
        if rng.random() < 0.2:
            args["dilation"] = size_arg(rng, rng.randint(1, 2), rng.randint(1, 3))
        pad = rng.choice(
            [None, None, "same", "valid", rng.randint(0, 3), (rng.randint(0, 2), rng.randint(0, 3))]
        )
        if pad is not None:
            args["pad"] = pad
        if rng.random() < 0.3:
            args["bias"] = rng.choice((False, True, *BIAS_INITS))
        if rng.random() < 0.2:
            args["weight"] = rng.choice(WEIGHT_INITS)
        if pad != "same" and rng.random() < 0.2:
            args["ceil"] = True
        elif rng.random() < 0.05:
            args["ceil"] = False
        return args

    def args_conv_transpose(self, shape) -> dict:
        """Groups, filters, a kernel, stride, padding, output padding below the stride or the
        dilation, bias; maps stay within 24 pixels a side."""
        rng = self.rng
        channels, h, w = shape
        args = {}
        groups = rng.choice([g for g in range(1, channels + 1) if channels % g == 0])
        if groups > 1 and rng.random() < 0.5:
            args["groups"] = groups
        else:
            groups = 1
        args["filters"] = groups * rng.randint(1, max(1, 6 // groups))
        kernel = rng.randint(1, 4), rng.randint(1, 4)
        args["kernel"] = size_arg(rng, *kernel)
        stride = tuple(rng.choice((1, 2, 2, 3)) if n <= 6 else 1 for n in (h, w))
        if stride != (1, 1) or rng.random() < 0.2:
            args["stride"] = size_arg(rng, *stride)
        dilation = (1, 1)
        if rng.random() < 0.25:
            dilation = rng.randint(1, 3), rng.randint(1, 2)
            args["dilation"] = size_arg(rng, *dilation)
        reach = [d * (k - 1) for d, k in zip(dilation, kernel, strict=True)]
        if rng.random() < 0.6:
            args["pad"] = size_arg(rng, *(rng.randint(0, r // 2 + 1) for r in reach))
        if rng.random() < 0.5:
            args["output_pad"] = size_arg(
                rng, *(rng.randint(0, max(s, d) - 1) for s, d in zip(stride, dilation, strict=True))
            )
        if rng.random() < 0.3:
            args["bias"] = rng.choice((False, True, *BIAS_INITS))
        if rng.random() < 0.2:
            args["weight"] = rng.choice(WEIGHT_INITS)
        return args

    def args_upsample(self, shape) -> dict:
        """A scale (maps within 24 pixels a side), a mode, aligned corners for bilinear."""
        rng = self.rng
        _, h, w = shape
        scale = tuple(rng.randint(1, max(1, min(3, 24 // n))) for n in (h, w))
        args = {}
        if scale != (2, 2) or rng.random() < 0.3:
            args["scale"] = size_arg(rng, *scale)
        if rng.random() < 0.7:
            args["mode"] = rng.choice(("bilinear", "nearest"))
        if args.get("mode") == "bilinear" and rng.random() < 0.5:
            args["align_corners"] = rng.random() < 0.7
        return args

    def args_maxpool(self, shape) -> dict:
        """A kernel, maybe a stride, padding at most half the kernel, ceil."""
        rng = self.rng
        kh, kw = rng.randint(1, min(4, shape[1] + 1)), rng.randint(1, min(4, shape[2] + 1))
        args = {"kernel": size_arg(rng, kh, kw)}
        if rng.random() < 0.5:
            args["stride"] = size_arg(rng, rng.randint(1, 3), rng.randint(1, 3))
        pad = rng.choice(
            [None, None, "same", "valid", rng.randint(0, min(kh, kw) // 2)]
            + [(rng.randint(0, kh // 2), rng.randint(0, kw // 2))]
        )
        if pad is not None:
            args["pad"] = pad
        if pad != "same" and rng.random() < 0.35:
            args["ceil"] = rng.random() < 0.9
        return args

    def args_avgpool(self, shape) -> dict:
        """maxpool's arguments and count_pad."""
        args = self.args_maxpool(shape)
        if self.rng.random() < 0.4:
            args["count_pad"] = self.rng.random() < 0.5
        return args

    def args_adaptive_avgpool(self, shape) -> dict:
        """A size that divides the map, or any small one (bins that overlap)."""
        rng = self.rng
        h = rng.choice(
            [d for d in range(1, shape[1] + 1) if shape[1] % d == 0] + [rng.randint(1, 7)]
        )
        w = rng.choice(
            [d for d in range(1, shape[2] + 1) if shape[2] % d == 0] + [rng.randint(1, 7)]
        )
        return {"size": size_arg(rng, h, w)}

    def args_lrn(self, shape) -> dict:
        """Some of size, alpha, beta and k."""
        rng = self.rng
        options = {
            "size": rng.randint(1, 7),
            "alpha": rng.choice((1e-4, 0.001, 0.01, 0.1, 1.0)),
            "beta": rng.choice((0.5, 0.75, 1.0)),
            "k": rng.choice((1, 2, 0.5)),
        }
        return {k: v for k, v in options.items() if rng.random() < 0.6}

    def args_batchnorm(self, shape) -> dict:
        """Sometimes eps and momentum."""
        rng = self.rng
        options = {"eps": rng.choice((1e-5, 0.001, 0.1)), "momentum": rng.choice((0.1, 0.01, 0.5))}
        return {k: v for k, v in options.items() if rng.random() < 0.3}

    def args_dropout(self, shape) -> dict:
        """Sometimes p."""
        return {"p": self.rng.choice((0.1, 0.5, 0.9))} if self.rng.random() < 0.5 else {}

    def args_stochastic_depth(self, shape) -> dict:
        """p, often 0 or 1 (torchvision's edge cases; the fuzzer runs in eval mode)."""
        return {"p": self.rng.choice((0.0, 0.1, 0.5, 1.0))}

    def args_layernorm(self, shape) -> dict:
        """Sometimes eps."""
        return {"eps": self.rng.choice((1e-6, 1e-5, 0.1))} if self.rng.random() < 0.5 else {}

    def args_layer_scale(self, shape) -> dict:
        """Sometimes an init (the default 1e-6 hides the branch it scales)."""
        rng = self.rng
        return {"init": rng.choice((0.5, 1.0, -2.0, 1e-6))} if rng.random() < 0.7 else {}

    def args_gelu(self, shape) -> dict:
        """Sometimes the form."""
        rng = self.rng
        return {"approximate": rng.choice(("none", "tanh"))} if rng.random() < 0.6 else {}

    def args_leaky_relu(self, shape) -> dict:
        """Sometimes the slope."""
        return {"slope": self.rng.choice((0.01, 0.2, 0.5, 0))} if self.rng.random() < 0.6 else {}

    def args_dense(self, shape) -> dict:
        """Units, sometimes a bias or weight initialiser."""
        rng = self.rng
        args = {"units": rng.randint(1, 12)}
        if rng.random() < 0.25:
            args["bias"] = rng.choice((False, True, *BIAS_INITS))
        if rng.random() < 0.2:
            args["weight"] = rng.choice(WEIGHT_INITS)
        return args

    def args_resize(self, shape) -> dict:
        """Up or down, by integer factors, to odd sizes (half-pixel ties), or anything."""
        rng = self.rng
        _, h, w = shape
        choice = rng.random()
        if choice < 0.3:  # up by an integer factor, or down by one
            factor = rng.choice((2, 3))
            h2, w2 = (
                (h * factor, w * factor) if h * factor <= 24 else (max(1, h // 2), max(1, w // 2))
            )
        elif choice < 0.5:  # odd outputs from even inputs: exact half-pixel ties in `nearest`
            h2, w2 = rng.choice((h, 2 * h + 1, 29 if h == 2 else 3)), rng.choice((2 * w + 1, 29, 7))
        else:
            h2, w2 = rng.randint(1, 20), rng.randint(1, 20)
        args = {"size": size_arg(rng, h2, w2)}
        if rng.random() < 0.7:
            args["mode"] = rng.choice(("bilinear", "nearest"))
        return args


# ----------------------------------------------------------------------------- helpers


def chain_shape(ops: list, shape: tuple) -> tuple:
    """The shape a chain of ops gives `shape` (the tracker's rules)."""
    for op in ops:
        shape = tracker.apply_op(op.kind, tracker.bind(op.kind, op, None), shape, None)[0]
    return shape


def fits_with(kind: str, *shapes: tuple) -> bool:
    """Whether concat / add / mul takes these shapes together."""
    try:
        tracker.merged(kind, list(shapes), None)
    except tracker.SpecError:
        return False
    return True


def factorizations(n: int) -> list:
    """Every (C, H, W) with C * H * W = n and C at most 8."""
    out = []
    for c in range(1, min(n, 8) + 1):
        if n % c:
            continue
        for h in range(1, n // c + 1):
            if (n // c) % h == 0:
                out.append((c, h, n // c // h))
    return out


def spec_seed(seed: int, index: int) -> str:
    """The seed of spec `index` of a run: each spec can be regenerated on its own."""
    return f"difffuzz:{seed}:{index}"


def generate(seed: int, index: int) -> Spec:
    """Spec `index` of the run `seed`."""
    return Generator(spec_seed(seed, index)).spec()
