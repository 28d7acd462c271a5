"""Syntax tree to IR: declarations, names, op arguments, initialiser defaults, the train recipe."""

from __future__ import annotations

import keyword

from archdsl import ir
from archdsl.binding import (
    BindError,
    bind,
    convert,
    fail,
    failures,
    field_errors,
    init_value,
    validated,
)
from archdsl.block_forms import block_forms
from archdsl.blocks import POSITIONS, BlockExpander, check_block, reads
from archdsl.diagnostics import Diagnostic, did_you_mean, error, located
from archdsl.expressions import evaluate
from archdsl.ops import LEARNED, MERGES, REGISTRY
from archdsl.ops.spec import ArgumentError
from archdsl.shape_queries import ShapesSoFar, UnknownShape
from archdsl.signatures import (
    AUGMENTS,
    AVERAGES,
    LOSSES,
    OPS,
    OPTIMIZERS,
    SCHEDULES,
    TRAIN_SETTINGS,
    Param,
)
from archdsl.syntax import (
    MAX_SIZE,
    BlockDef,
    Element,
    InitDecl,
    InputDecl,
    ModelDecl,
    Module,
    Setting,
    StatementNode,
    TowersBlock,
    TrainBlock,
    Value,
)
from archdsl.towers import MERGE, expand_towers
from archdsl.train_groups import GROUP_SETTINGS, Groups, check_overlap, group_setting

IDENTIFIER_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
LANGUAGE_WORDS = {"model", "input", "init", "train", "from", "expect", "true", "false", "none"}
TOKEN_WORDS = ("tokens", "of")  # the words of `input NAME: tokens L of V`
# The public attributes of torch.nn.Module (as of torch 2.14) and the modules generated code
# imports: a statement of that name would shadow them in model.py.
FRAMEWORK_MEMBERS = {
    "T_destination", "add_module", "apply", "bfloat16", "buffers", "call_super_init",
    "children", "compile", "cpu", "cuda", "double", "dump_patches", "eval", "extra_repr",
    "float", "forward", "get_buffer", "get_extra_state", "get_parameter", "get_submodule",
    "half", "ipu", "load_state_dict", "modules", "mtia", "named_buffers", "named_children",
    "named_modules", "named_parameters", "parameters", "register_backward_hook",
    "register_buffer", "register_forward_hook", "register_forward_pre_hook",
    "register_full_backward_hook", "register_full_backward_pre_hook",
    "register_load_state_dict_post_hook", "register_load_state_dict_pre_hook",
    "register_module", "register_parameter", "register_state_dict_post_hook",
    "register_state_dict_pre_hook", "requires_grad_", "set_extra_state", "set_submodule",
    "share_memory", "state_dict", "to", "to_empty", "train", "training", "type", "xpu",
    "zero_grad", "reset_parameters", "self", "super",
    "torch", "nn", "F", "keras", "ops", "np", "math",
}  # fmt: skip
# Names model.py defines at its top level (either backend): the model's class may not take one.
MODEL_FILE_NAMES = {
    "TRAIN", "MODEL_NAME", "SPEC", "INPUT_SHAPE", "NUM_CLASSES", "OrderedDict", "build_model",
    "predict", "build_optimizer", "build_scheduler", "save_weights", "load_weights", "place",
    "param_groups", "exclude_from_decay", "PaperSGD", "TorchSGD", "L2Adam", "TorchAdamW", "OnPlateau",
    "StepDecay", "MultiStep", "Cosine", "LocalResponseNorm", "PaddedMaxPool2D",
    "PaddedAvgPool2D", "PaddedAvgPool2d", "Resize", "Chunk", "ChannelShuffle",
    "BroadcastMerge", "freeze_statements", "frozen_norms", "scale_rates",
    "ShiftedWindowAttention", "SpaceToDepth", "FusedLRN",
}  # fmt: skip
MAX_TOWERS = 64
DEFAULT_WEIGHT_INIT = ir.GlorotUniform()
DEFAULT_BIAS_INIT = ir.Constant(value=0.0)
INIT_TARGETS = ("weight", "bias")


def unsafe_identifier(name: str) -> str | None:
    """Why `name` cannot become a Python identifier in generated code, or None."""
    if not name or name[0].isdigit() or not set(name) <= IDENTIFIER_CHARS:
        return "only ASCII letters, digits and `_` are allowed, not starting with a digit"
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        return "it is a Python keyword"
    if name in LANGUAGE_WORDS:
        return "it is a word of the .arch language"
    if name.startswith("_"):
        return "names starting with `_` are reserved for generated code"
    if name in FRAMEWORK_MEMBERS:
        return "generated code uses it (a framework method or a local name)"
    return None


class _Lowering:
    """Walks a Module once, collecting diagnostics instead of stopping at the first problem."""

    def __init__(self, module: Module, totals: dict[str, int] | None = None):
        """`totals`: the calls of each block in the model, once counted (`positions`)."""
        self.module = module
        self.diagnostics: list[Diagnostic] = []
        self.defaults: dict[tuple[str, ...], object] = {}
        self.totals = totals
        self.expander = BlockExpander({})
        self.lowered: dict[str, ir.Statement] = {}  # by name, so far
        self.failed: set[str] = set()  # statements whose errors are reported
        self.aliases: dict[str, str] = {}

    def run(self) -> ir.Graph | None:
        items = self.module.items
        model = self._model(items)
        inputs = self._inputs(items)
        self._init_defaults(items)
        self.broken_blocks: set[str] = set()
        self.expander = BlockExpander(self._blocks(items), self.totals)
        shapes = ShapesSoFar({i.name: i.shape for i in inputs}, self._lowered_above)
        self.expander.shape_of = shapes.shape
        statements = self._statements(items, inputs)
        train = self._train(items, inputs[0].shape if inputs else (), statements)
        if any(d.severity == "error" for d in self.diagnostics) or model is None or not inputs:
            return None
        if not statements:
            self._report(
                error(
                    "E017",
                    inputs[0].span,
                    "the spec has no statements: nothing to compute",
                    "add e.g. `fc = flatten |> dense(10)`",
                )
            )
            return None
        blocks, calls = block_forms(self.expander.blocks, self.expander.records, self.aliases)
        return ir.Graph(
            name=model.name,
            file=self.module.file,
            inputs=tuple(inputs),
            statements=tuple(statements),
            train=train,
            output=statements[-1].name,
            blocks=blocks,
            calls=calls,
        )

    def _report(self, d: Diagnostic) -> None:
        self.diagnostics.append(d)

    def _reject(self, exc: BindError, via: str | None = None) -> None:
        """Report every diagnostic a BindError carries (one per bad argument of a call)."""
        self.diagnostics.extend(located(d, via) for d in exc.diagnostics)

    def _name_ok(self, name: str, span: ir.Span, what: str) -> bool:
        why = unsafe_identifier(name)
        if why:
            self._report(
                error("E015", span, f"{what} `{name}` cannot be used: {why}", _rename_hint(name))
            )
        return why is None

    def _model(self, items) -> ModelDecl | None:
        decls = [i for i in items if isinstance(i, ModelDecl)]
        if not decls:
            self._report(
                error(
                    "E017",
                    _file_start(self.module.file),
                    "the spec has no `model NAME` line",
                    "start the file with e.g. `model AlexNet`",
                )
            )
            return None
        for extra in decls[1:]:
            self._report(error("E017", extra.span, "a second `model` declaration", "keep one"))
        name = decls[0].name
        if name in MODEL_FILE_NAMES:
            self._report(
                error(
                    "E015",
                    decls[0].name_span,
                    f"model name `{name}` cannot be used: the generated model.py defines it",
                    f"rename it, e.g. `{name}Net`",
                )
            )
        else:
            self._name_ok(name, decls[0].name_span, "model name")
        return decls[0]

    def _inputs(self, items) -> list[ir.Input]:
        decls = [i for i in items if isinstance(i, InputDecl)]
        if not decls:
            self._report(
                error(
                    "E017",
                    _file_start(self.module.file),
                    "the spec has no `input` declaration",
                    "add e.g. `input image: 3 x 227 x 227`",
                )
            )
        inputs = []
        for d in decls:
            if not self._name_ok(d.name, d.name_span, "input name"):
                continue
            if d.words and not self._token_words_ok(d):
                continue
            if len(d.dims) not in (1, 3):
                self._report(
                    error(
                        "E004",
                        d.dims_span,
                        f"input `{d.name}` has {len(d.dims)} dimension(s)",
                        "write C x H x W for images or a single number for features",
                    )
                )
                continue
            sizes = (*d.dims, d.vocab) if d.words else d.dims
            bad = [i for i, x in enumerate(sizes) if _size_problem(x)]
            if bad:
                size = sizes[bad[0]]
                self._report(
                    error(
                        "E006",
                        d.dim_spans[bad[0]],
                        f"input `{d.name}` has {_size_problem(size)} size {size}",
                        f"sizes are whole numbers from 1 to {MAX_SIZE}, e.g. `3 x 227 x 227`",
                    )
                )
                continue
            inputs.append(ir.Input(name=d.name, shape=d.dims, span=d.span, vocab=d.vocab))
        return inputs

    def _token_words_ok(self, d: InputDecl) -> bool:
        """`tokens L of V`: E004 at the first word that is not the one expected."""
        for (word, span), wanted in zip(d.words, TOKEN_WORDS, strict=True):
            if word != wanted:
                self._report(
                    error(
                        "E004",
                        span,
                        f"input `{d.name}`: expected `{wanted}`, found `{word}`",
                        "token ids are written `input text: tokens 256 of 20000` "
                        "(sequence length 256, ids below 20000)",
                    )
                )
                return False
        return True

    def _init_defaults(self, items) -> None:
        for d in (i for i in items if isinstance(i, InitDecl)):
            try:
                value = evaluate(d.value, {})
                self.defaults[self._init_target(d)] = init_value(value, "the default initialiser")
            except BindError as exc:
                self._reject(exc)

    def _init_target(self, d: InitDecl) -> tuple[str, ...]:
        target = d.target
        valid = [(t,) for t in INIT_TARGETS] + [(k, t) for k in LEARNED for t in INIT_TARGETS]
        if target not in valid:
            choices = [".".join(v) for v in valid]
            raise fail(
                "E003",
                d.target_span,
                f"cannot set a default initialiser for `{'.'.join(target)}`",
                did_you_mean(".".join(target), choices),
            )
        return target

    def _blocks(self, items) -> dict[str, BlockDef]:
        """Block definitions by name, their signatures checked."""
        blocks: dict[str, BlockDef] = {}
        for block in (i for i in items if isinstance(i, BlockDef)):
            try:
                check_block(block)
            except BindError as exc:
                self._report(exc.diagnostic)
                self.broken_blocks.add(block.name)
                continue
            if block.name in blocks:
                self._report(
                    error("E009", block.name_span, f"block `{block.name}` is defined twice")
                )
            elif not all(
                # a block's statements are attributes of its calls' modules in model.py
                [self._name_ok(s.name, s.name_span, "statement name") for s in block.statements]
            ):
                self.broken_blocks.add(block.name)
            elif self._name_ok(block.name, block.name_span, "block name"):
                blocks[block.name] = block
        return blocks

    def _lowered_above(self, name: str) -> ir.Statement | None:
        """A statement lowered so far, or one of the call being expanded lowered now, for a
        shape query (None: not defined above); UnknownShape for one whose error is reported."""
        name = self.aliases.get(name, name)
        if name not in self.lowered and name in self.expander.emitted:
            node, via = self.expander.emitted[name]
            stmt = self._statement(node, None, 1, via)
            if stmt is None:
                self.failed.add(name)
            else:
                self.lowered[name] = stmt
        if name in self.failed:
            raise UnknownShape(name)
        return self.lowered.get(name)

    def _statements(self, items, inputs: list[ir.Input]) -> list[ir.Statement]:
        out: list[ir.Statement] = []
        aliases = self.aliases
        previous = inputs[0].name if inputs else None
        for node, count in self._statement_nodes(items):
            if self.expander.exhausted:
                break  # the spec is too large: its error is reported once
            if not self._name_ok(node.name, node.name_span, "statement name"):
                self.failed.add(node.name)
                continue
            if any(e.name in self.broken_blocks for e in node.elements):
                self.failed.add(node.name)
                previous = node.name  # its block's definition error is already reported
                continue
            try:
                expanded = self.expander.expand(node, previous, count)
            except (BindError, UnknownShape) as exc:
                if isinstance(exc, BindError):  # else the error it stems from is reported
                    self._reject(exc)
                self.failed.add(node.name)
                previous = node.name
                continue
            for plain, via in expanded.nodes:
                stmt = self._statement(plain, previous, count, via)
                if stmt is not None:
                    out.append(stmt)
                    self.lowered[plain.name] = stmt
                else:
                    self.failed.add(plain.name)
                previous = plain.name
            if expanded.output != node.name:
                aliases[node.name] = expanded.output
            previous = expanded.output or previous
        out = [_unalias(s, aliases) for s in out]
        try:
            return expand_towers(out)
        except BindError as exc:
            self._report(exc.diagnostic)
            return out

    def _statement_nodes(self, items):
        """Each top-level statement, with the number of towers it runs in (0: invalid)."""
        for item in items:
            if isinstance(item, TowersBlock):
                count = self._tower_count(item)
                yield from ((node, count) for node in item.statements)
            elif isinstance(item, StatementNode):
                yield item, 1

    def _tower_count(self, block: TowersBlock) -> int:
        """N of `towers N`: a whole number of at least 2 (0 marks it invalid)."""
        n = block.count
        if not isinstance(n, int) or not 2 <= n <= MAX_TOWERS:
            self._report(
                error(
                    "E006",
                    block.count_span,
                    f"`towers` needs a whole number from 2 to {MAX_TOWERS}, not {n}",
                )
            )
            return 0
        return n

    def _statement(
        self, node: StatementNode, previous: str | None, towers: int, via: str | None = None
    ) -> ir.Statement | None:
        ok = towers > 0
        inputs: tuple[str, ...] = (previous,) if previous else ()
        input_spans = (node.span,) * len(inputs)
        if node.source:
            inputs, input_spans = (node.source[0],), (node.source[1],)
        ops = []
        for index, element in enumerate(node.elements):
            try:
                if element.name in MERGES:
                    inputs, input_spans = self._multi_inputs(node, element, index)
                if element.name == MERGE:
                    ops.append(_merge(element, index, towers))
                    continue
                ops.append(self._op(element))
            except BindError as exc:
                self._reject(exc, via)
                ok = False
        expect = None
        if node.expect:
            dims, _, spans = node.expect
            bad = [i for i, x in enumerate(dims) if _size_problem(x)]
            if bad:
                self._report(
                    error(
                        "E006",
                        spans[bad[0]],
                        f"`expect` has {_size_problem(dims[bad[0]])} size {dims[bad[0]]}",
                        f"sizes are whole numbers from 1 to {MAX_SIZE}",
                    )
                )
                ok = False
            expect = dims
        if not ok or not inputs:
            return None
        return ir.Statement(
            name=node.name,
            span=node.span,
            inputs=inputs,
            input_spans=input_spans,
            ops=tuple(ops),
            expect=expect,
            expect_span=node.expect[1] if node.expect else None,
            towers=max(towers, 1),
            via=via,
        )

    def _multi_inputs(self, node: StatementNode, element: Element, index: int) -> tuple:
        """The named inputs of a leading concat/add, and where each is written."""
        if index != 0:
            raise fail(
                "E004",
                element.span,
                f"`{element.name}` must start its statement: it takes named inputs",
                f"write `{node.name} = {element.name}(a, b) |> ...`",
            )
        if node.source:
            raise fail(
                "E004", node.source[1], f"`{element.name}` names its inputs; `from` is not needed"
            )
        names, spans = [], []
        for arg in element.args:
            if arg.key is not None or arg.value.kind != "name":
                raise fail(
                    "E004",
                    arg.span,
                    f"`{element.name}` takes the names of earlier statements or inputs",
                    f"e.g. `{element.name}(branch1, branch2)`",
                )
            names.append(arg.value.value)
            spans.append(arg.value.span)
        if len(names) < 2:
            raise fail("E005", element.span, f"`{element.name}` needs at least two inputs")
        return tuple(names), tuple(spans)

    def _op(self, element: Element):
        name = element.name
        if name not in OPS:
            raise fail("E002", element.name_span, f"unknown op `{name}`", did_you_mean(name, OPS))
        args = () if name in MERGES else element.args
        spans: dict = {}
        values = bind(name, args, OPS[name], element.span, spans)
        return build_op(name, values, element.span, self.defaults, spans)

    def _train(self, items, input_shape: tuple[int, ...], statements) -> ir.Train:
        blocks = [i for i in items if isinstance(i, TrainBlock)]
        for extra in blocks[1:]:
            self._report(
                error("E017", extra.span, "a second `train` section", "merge them into one")
            )
        if not blocks:
            return ir.Train()
        block = blocks[0]
        fields: dict = {"span": block.span}
        seen: set[str] = set()
        groups, named = Groups(statements, self.failed), {}
        for setting in block.settings:
            try:
                if setting.key in seen:
                    raise fail(
                        "E016", setting.key_span, f"train setting `{setting.key}` given twice"
                    )
                seen.add(setting.key)
                if setting.key in GROUP_SETTINGS:
                    fields[setting.key], named[setting.key] = group_setting(setting, groups)
                else:
                    fields[setting.key] = _setting(setting, input_shape)
            except BindError as exc:
                self._reject(exc)
        try:
            check_overlap(named.get("freeze", {}), named.get("lr_scale", {}))
            train = validated(ir.Train, fields, block.span, "train")
            _check_recipe(train, {s.key: s.value.span for s in block.settings})
            return train
        except BindError as exc:
            self._reject(exc)
            return ir.Train()


def _size_problem(size) -> str:
    """'a fractional', 'a zero', 'a negative' or 'an out-of-range'; '' for a valid size."""
    if not isinstance(size, int):
        return "a fractional"
    if size > MAX_SIZE:
        return "an out-of-range"
    return "" if size > 0 else "a zero" if size == 0 else "a negative"


def _unalias(stmt: ir.Statement, aliases: dict[str, str]) -> ir.Statement:
    """Read a block-call statement's value where its name is read."""
    if not any(n in aliases for n in stmt.inputs):
        return stmt
    return stmt.model_copy(update={"inputs": tuple(aliases.get(n, n) for n in stmt.inputs)})


def _merge(element: Element, index: int, towers: int) -> ir.Concat:
    """`merge`: the concatenation of every tower of the statement's input."""
    if towers < 2:
        raise fail(
            "E004",
            element.span,
            "`merge` only makes sense inside `towers N { }`",
            "outside a towers block, reading a towered statement already joins its towers",
        )
    if index != 0 or element.args:
        raise fail("E004", element.span, "`merge` takes no arguments and must start its statement")
    return ir.Concat(span=element.span)


def build_op(name: str, values: dict, span: ir.Span, defaults: dict, spans: dict | None = None):
    """The IR op for a bound element: arguments completed by its spec, initialiser defaults
    filled in for a learned op."""
    spec, spans = REGISTRY[name], spans or {}
    try:
        values = spec.prepare(dict(values))
    except ArgumentError as exc:
        raise fail(exc.code, spans.get(exc.argument, span), exc.message, exc.hint) from None
    if spec.learned:
        bias = values.pop("bias", True)
        values["bias"] = bias is not False
        values["bias_init"] = (
            bias if not isinstance(bias, bool) else _default(defaults, name, "bias")
        )
        values["weight_init"] = values.pop("weight", None) or _default(defaults, name, "weight")
    return validated(spec.node, {**values, "op": name, "span": span}, span, name, spans)


def _default(defaults: dict, kind: str, target: str):
    """The initialiser for `kind.target`: per-kind default, then global, then built-in."""
    builtin = DEFAULT_WEIGHT_INIT if target == "weight" else DEFAULT_BIAS_INIT
    return defaults.get((kind, target), defaults.get((target,), builtin))


def _setting(s: Setting, input_shape: tuple[int, ...]):
    """One train setting, validated into its IR value."""
    key, v = s.key, evaluate(s.value, {})
    if key in ("batch", "epochs"):
        return convert(Param(key, "count"), v, "train")
    if key == "clip_grad_norm":
        return _max_norm(v)
    if key == "ema":
        return _ema(v)
    if key == "augment":
        return _augment(v.value if v.kind == "list" else (v,), input_shape)
    tables = {
        "optimizer": (OPTIMIZERS, OPTIMIZER_CLASSES),
        "schedule": (SCHEDULES, SCHEDULE_CLASSES),
        "loss": (LOSSES, LOSS_CLASSES),
    }
    if key not in tables:
        raise fail(
            "E019",
            s.key_span,
            f"unknown train setting `{key}`",
            did_you_mean(key, TRAIN_SETTINGS),
        )
    table, classes = tables[key]
    return _recipe_call(v, table, key, classes)


def _augment(items, input_shape: tuple[int, ...]) -> tuple:
    """The augment list: every entry's problems reported (one diagnostic each), then the
    problems of the list as a whole."""
    steps, errors = [], []
    for item in items:
        try:
            step = _eval_size(_recipe_call(item, AUGMENTS, "augmentation", AUGMENT_CLASSES))
        except BindError as exc:
            errors.append(exc)
            continue
        errors += _augment_problems(step, item.span, input_shape)
        steps.append(step)
    if errors:
        raise failures(errors)
    _check_order(steps, items)
    return tuple(steps)


def _ema(v: Value) -> ir.EMA | None:
    """`ema = ema(decay=..., every=..., adjust=...)`, or `none`."""
    if (v.kind, v.value) == ("name", "none"):
        return None
    if v.kind == "number":
        raise fail(
            "E019",
            v.span,
            "`ema` takes the call `ema(...)`, not a number",
            f"write `ema = ema(decay={v.value})`",
        )
    return _recipe_call(v, AVERAGES, "ema", {"ema": ir.EMA})


def _max_norm(v: Value) -> float:
    """`clip_grad_norm`: a positive number, the largest global L2 norm of the gradients."""
    norm = convert(Param("clip_grad_norm", "float"), v, "train")
    if norm <= 0:
        raise fail(
            "E006",
            v.span,
            f"`clip_grad_norm` must be positive, got {norm}",
            "leave the setting out to train without clipping",
        )
    return norm


def _check_recipe(train: ir.Train, spans: dict) -> None:
    """Settings that must agree with each other: the cosine warmup fits in the epochs."""
    schedule = train.schedule
    if schedule.name == "cosine" and schedule.warmup >= train.epochs:
        raise fail(
            "E019",
            spans["schedule"],
            f"`cosine` warms up for {schedule.warmup} epochs of {train.epochs}: nothing is "
            "left to anneal",
            f"warm up for fewer epochs than `epochs`, e.g. `warmup={min(max(1, train.epochs // 10), train.epochs - 1)}`",
        )


def _eval_size(step):
    """A random_resized_crop without `from`: evaluation resizes to size * 256 / 224, as
    torchvision's recipes resize to 256 for a 224 crop."""
    if step.name != "random_resized_crop" or step.from_ is not None:
        return step
    return step.model_copy(update={"from_": round(step.size * 256 / 224)})


def _check_order(steps, items) -> None:
    """Each batch-level mix (mixup, cutmix) at most once; the POLICIES before the steps that
    turn the pixels into floats (they work on uint8, as torchvision's)."""
    seen: set[str] = set()
    errors = []
    for step, item in zip(steps, items, strict=True):
        if step.name in ("mixup", "cutmix") and step.name in seen:
            errors.append(
                fail(
                    "E016",
                    item.span,
                    f"`{step.name}` given twice",
                    "each batch takes one of mixup and cutmix (chosen at random if both are "
                    "listed)",
                )
            )
        floats = [name for name in FLOAT_STEPS if name in seen]
        if step.name in POLICIES and floats:
            errors.append(
                fail(
                    "E019",
                    item.span,
                    f"`{step.name}` works on 8-bit pixels, but `{floats[0]}` comes before it",
                    f"move `{step.name}` before `{floats[0]}`, as torchvision's recipes do: "
                    f"crop, hflip, {step.name}, normalize, random_erasing",
                )
            )
        seen.add(step.name)
    if errors:
        raise failures(errors)


def _range_problems(step, span):
    """random_resized_crop's and random_erasing's scale and ratio: [low, high] ranges, scale
    within (0, 1]; a BindError for each that is not."""
    for key, top in (("scale", 1.0), ("ratio", None)):
        pair = getattr(step, key)
        low, high = type(step).model_fields[key].default
        example = f"e.g. `{key}=[{low:.4g}, {high:.4g}]` (`{step.name}`'s default)"
        if len(pair) != 2:
            yield fail(
                "E019",
                span,
                f"`{step.name}`: `{key}` needs two numbers [low, high], not {len(pair)}",
                example,
            )
        elif pair[0] > pair[1] or (top is not None and pair[1] > top):
            yield fail(
                "E019",
                span,
                f"`{step.name}`: `{key}` [{pair[0]}, {pair[1]}] is not a range "
                + ("within (0, 1]" if top else "low to high"),
                example,
            )


def _crop_problems(step, span, height: int, width: int):
    """A crop must yield the model's input size, from a resize at least as large."""
    if (step.size, step.size) != (height, width):
        yield fail(
            "E019",
            span,
            f"`{step.name}` gives {step.size} x {step.size} crops, but the input is "
            f"{height} x {width}",
            f"crop to the input size, e.g. `{step.name}({height}, from={step.from_})`"
            if height == width
            else "crops are square; make the input square",
        )
    if step.from_ < step.size:
        yield fail("E019", span, f"`{step.name}`: `from` ({step.from_}) is smaller than the crop")


def _augment_problems(step, span, input_shape: tuple[int, ...]):
    """A BindError for each way an entry does not fit the input: crops must yield the
    model's input size; normalize needs one value per channel; pca_lighting needs RGB."""
    if len(input_shape) != 3:
        yield fail("E019", span, f"`{step.name}` needs an image input (C x H x W)")
        return
    channels, height, width = input_shape
    if step.name in ("random_resized_crop", "random_erasing"):
        yield from _range_problems(step, span)
    if step.name in ("random_crop", "center_crop", "random_resized_crop"):
        yield from _crop_problems(step, span, height, width)
    if step.name == "normalize" and len(step.mean) != channels:
        yield fail(
            "E019",
            span,
            f"`normalize` has {len(step.mean)} means for {channels} channel(s)",
            "give one mean and one std per channel, e.g. `normalize(mean=[0.5], std=[0.5])`",
        )
    if step.name == "pca_lighting" and channels != 3:
        yield fail("E019", span, f"`pca_lighting` needs RGB input, not {channels} channel(s)")
    if step.name == "normalize" and len(step.std) != len(step.mean):
        yield fail("E019", span, "`normalize` needs as many std values as means")


def _recipe_call(v: Value, table: dict, what: str, classes: dict):
    """`sgd(lr=0.01)`, `hflip`, ... -> the IR model."""
    if v.kind not in ("name", "call"):
        raise fail(
            "E019",
            v.span,
            f"{what} must be one of {', '.join(table)}, not "
            + (f"`{v.value}`" if v.kind == "number" else f"a {v.kind}"),
            f"e.g. `{next(iter(table))}`",
        )
    if v.value not in table:
        raise fail("E019", v.span, f"unknown {what} `{v.value}`", did_you_mean(v.value, table))
    spans: dict = {}
    values: dict = {}
    cls = classes[v.value]
    if cls is ir.Adam:
        values["name"] = v.value
    try:
        bind(v.value, v.args, table[v.value], v.span, spans, values)
    except BindError as exc:  # the arguments that did convert may be out of range too
        raise failures([exc, *field_errors(cls, values, v.span, v.value, spans)]) from None
    return validated(cls, values, v.span, v.value, spans)


def _rename_hint(name: str) -> str:
    """Suggest a safe alternative name."""
    cleaned = "".join(c if c in IDENTIFIER_CHARS else "_" for c in name).strip("_") or "layer"
    if cleaned[0].isdigit():
        cleaned = "l" + cleaned
    candidate = cleaned if unsafe_identifier(cleaned) is None else f"{cleaned}_layer"
    return f"rename it, e.g. `{candidate}`"


def _file_start(file: str) -> ir.Span:
    """A span at the first character of the file."""
    return ir.Span(file=file, line=1, column=1, end_line=1, end_column=2)


def lower(module: Module) -> tuple[ir.Graph | None, list[Diagnostic]]:
    """Lower a parsed module to a Graph (None when it has errors) plus diagnostics.

    A spec that reads `positions` is lowered twice: first to count the calls of each block
    (with `positions` a placeholder), then with the counts, which must come out the same.
    """
    totals = None
    if reads(module, POSITIONS):
        first = _Lowering(module)
        first.run()
        totals = dict(first.expander.calls)
    lowering = _Lowering(module, totals)
    graph = lowering.run()
    if totals is not None and dict(lowering.expander.calls) != totals and graph is not None:
        lowering.diagnostics.append(
            error(
                "E004",
                _file_start(module.file),
                "how many times a block is called depends on `positions`",
                "use `positions` in arguments, not in the conditions or repetitions that decide "
                "which blocks are called",
            )
        )
        graph = None
    return graph, lowering.diagnostics


OPTIMIZER_CLASSES = {"sgd": ir.SGD, "adam": ir.Adam, "adamw": ir.Adam, "rmsprop": ir.RMSprop}
SCHEDULE_CLASSES = {
    "on_plateau": ir.OnPlateau,
    "step": ir.StepDecay,
    "multistep": ir.MultiStep,
    "cosine": ir.Cosine,
    "none": ir.NoSchedule,
}
LOSS_CLASSES = {"cross_entropy": ir.CrossEntropy}
# torchvision's policies of ops on uint8 pixels
POLICIES = ("trivial_augment", "rand_augment", "auto_augment")
FLOAT_STEPS = ("normalize", "pca_lighting", "random_erasing")  # their output is float pixels
AUGMENT_CLASSES = {
    "random_crop": ir.RandomCrop,
    "center_crop": ir.CenterCrop,
    "random_resized_crop": ir.RandomResizedCrop,
    "hflip": ir.HFlip,
    "pca_lighting": ir.PCALighting,
    "normalize": ir.Normalize,
    "random_erasing": ir.RandomErasing,
    "trivial_augment": ir.TrivialAugment,
    "rand_augment": ir.RandAugment,
    "auto_augment": ir.AutoAugment,
    "mixup": ir.Mixup,
    "cutmix": ir.Cutmix,
}
