"""Blocks: expanding calls of `block NAME(params) { ... }` into plain, predictably named statements.

A statement whose pipeline calls blocks (`layer2 = bottleneck(128, stride=2) |> bottleneck(128) * 3`)
becomes the statements of each call, named `layer2.0.conv1`, `layer2.1.conv1`, ... (a single call
without repetition is not numbered: `inception3a.branch1`): the dots are the spec's nesting, and
no name a user writes holds one. Inside a block, `in` is the call's
input (`in.channels` its shape's size, asked of `shape_of`), `index` is the repetition index,
`position` / `positions` the call's place among all the calls of its block and their number,
parameters are substituted into arguments, and a statement with `if CONDITION` exists only when
the condition holds. Values are evaluated here, so lowering sees literals only.
"""

from __future__ import annotations

import keyword
from collections import ChainMap, Counter
from collections.abc import Callable
from dataclasses import dataclass, field, fields, is_dataclass, replace

from archdsl.binding import BindError, bind, convert, fail, failures
from archdsl.diagnostics import did_you_mean, located
from archdsl.expressions import TensorRef, evaluate, evaluate_args, truth
from archdsl.ops import MERGES
from archdsl.params import Param
from archdsl.signatures import OPS
from archdsl.syntax import Arg, BlockDef, Element, Pos, StatementNode, Value, passed_limit

BLOCK_INPUT = "in"
INDEX = "index"
POSITION = "position"  # of a call among all the calls of its block in the model, from 0
POSITIONS = "positions"  # how many calls of the block the model makes
UNCOUNTED = 10**9  # `positions` before the calls are counted (a first pass, see lowering.lower)
MAX_REPEAT = 10_000
MAX_NESTING = 50  # blocks calling blocks (expansion recurses once per level)
PARAM_KINDS = {"int": "int", "float": "float", "bool": "bool", "size": "size", "name": "name"}


@dataclass
class Expanded:
    """The plain statements a statement stands for, and which of them holds its value."""

    nodes: list[tuple[StatementNode, str | None]] = field(default_factory=list)
    output: str = ""


@dataclass(frozen=True)
class CallRecord:
    """One call as expanded: its statements' prefix, its block, the name it reads, which of the
    block's statements it has (indices), and the names its body could read (block_forms.py)."""

    path: str
    block: str
    source: str
    present: tuple[int, ...]
    env: dict


@dataclass(frozen=True)
class _Scope:
    """Where a block body is being expanded: names, parameters, the call chain for messages."""

    prefix: str
    input: str
    block_input: str
    env: dict
    via: str | None
    stack: tuple[str, ...]


class BlockExpander:
    """Expands statements against a table of block definitions."""

    def __init__(self, blocks: dict[str, BlockDef], totals: dict[str, int] | None = None):
        """`totals`: how many times the model calls each block (`positions`), once counted."""
        self.blocks = blocks
        self.totals = totals
        self.calls: Counter[str] = Counter()  # calls expanded so far, per block
        self.shape_of: Callable[..., tuple[int, ...]] | None = None  # (name, span) -> shape
        self.emitted: dict[str, tuple[StatementNode, str | None]] = {}  # this expansion's
        self.statements = 0  # emitted so far, each tower counted
        self.terms = 0  # ops and values emitted so far, each tower counted
        self.copies = 1  # towers of the statement being expanded
        self.exhausted = False  # set once the spec grows past a limit: stop expanding
        self.costs: dict[str, tuple[int, int]] = {}  # per block: (plain statements, terms)
        self.records: list[CallRecord] = []  # every call expanded, in order

    def expand(self, node: StatementNode, previous: str | None, copies: int = 1) -> Expanded:
        """A top-level statement (run in `copies` towers): unchanged (values folded) unless it
        calls blocks."""
        self.copies = max(copies, 1)
        self.emitted = {}
        if not any(e.name in self.blocks for e in node.elements):
            self._charge(1, node.size, node.span)
        scope = _Scope("", previous or "", previous or "", {}, None, ())
        if node.condition is not None and not truth(node.condition, {}, "`if`"):
            return Expanded(output=previous or "")
        return self._statement(node, node.name, scope)

    def _charge(self, statements: int, terms: int, span: Pos) -> None:
        """Count what an expansion emits; past MAX_STATEMENTS or MAX_TERMS, refuse it."""
        self.statements += statements * self.copies
        self.terms += terms * self.copies
        passed = passed_limit(self.statements, self.terms)
        if passed:
            self.exhausted = True
            raise fail(
                "E006",
                span,
                f"blocks, `* N` and towers expand the spec to more than {passed}",
                "repeat less, or nest fewer block calls",
            )

    def _statement(self, node: StatementNode, name: str, scope: _Scope, local=None) -> Expanded:
        """One statement in `scope`: its calls expanded, or its ops with evaluated arguments."""
        calls = [e for e in node.elements if e.name in self.blocks]
        if not calls:
            self.emitted[name] = (self._plain(node, name, scope, local), scope.via)
            return Expanded([self.emitted[name]], name)
        if len(calls) != len(node.elements):
            first_op = next(e for e in node.elements if e.name not in self.blocks)
            raise fail(
                "E004",
                first_op.span,
                f"`{name}` mixes block calls and ops",
                "put the ops in a statement of their own before or after the block calls",
            )
        source = self._source(node, scope, local)
        numbered = len(calls) > 1 or calls[0].repeat is not None
        out = Expanded(output=source)
        index = 0
        for call in calls:
            for i in range(_repeat_count(call)):
                prefix = f"{name}.{index}" if numbered else name
                body = self._call(call, prefix, out.output, i, scope)
                out.nodes += body.nodes
                out.output = body.output
                index += 1
        if node.expect is not None and out.nodes:
            last, via = out.nodes[-1]
            out.nodes[-1] = (replace(last, expect=node.expect), via)
        return out

    def _source(self, node: StatementNode, scope: _Scope, local) -> str:
        """The name a statement reads: its `from`, else the scope's running input."""
        if node.source is None:
            return scope.input
        return self._resolve(node.source[0], node.source[1], scope, local)

    def _plain(self, node: StatementNode, name: str, scope: _Scope, local) -> StatementNode:
        """An op statement with arguments evaluated and, inside a block, names rewritten."""
        elements = tuple(self._element(e, scope, local) for e in node.elements)
        source = node.source
        if scope.prefix and not (elements and elements[0].name in MERGES):
            src = self._source(node, scope, local)
            source = (src, node.source[1] if node.source else node.span)
        return replace(node, name=name, elements=elements, source=source, condition=None)

    def _element(self, e: Element, scope: _Scope, local) -> Element:
        """An op application with its arguments evaluated (and input names resolved)."""
        if e.name in MERGES and scope.prefix:
            args = tuple(
                replace(
                    a,
                    value=replace(
                        a.value, value=self._resolve(a.value.value, a.span, scope, local)
                    ),
                )
                if a.key is None and a.value.kind == "name"
                else a
                for a in e.args
            )
            return replace(e, args=args)
        if e.repeat is not None and isinstance(e.repeat[0], str):
            factors = f"{e.name}, {e.repeat[0]}"
            raise fail(
                "E004",
                e.span,
                f"there is no element-wise `*` between tensors (`{e.name} * {e.repeat[0]}`)",
                f"write `mul({factors})`: the element-wise product, broadcasting sizes of 1",
            )
        if e.repeat is not None:
            raise fail(
                "E004",
                e.repeat[1],
                f"`* N` repeats blocks; `{e.name}` is an op",
                "write the op N times",
            )
        return replace(e, args=evaluate_args(e.args, scope.env))

    def _resolve(self, name: str, span: Pos, scope: _Scope, local) -> str:
        """A name read inside a block: `in`, or a statement of the same block."""
        if not scope.prefix:
            return name
        if name == BLOCK_INPUT:
            return scope.block_input
        if local is not None and name in local:
            return local[name]
        known = [BLOCK_INPUT, *(local or {})]
        raise fail(
            "E010",
            span,
            f"`{name}` is not defined in this block ({scope.via})",
            "a block reads only `in`, its parameters and its own statements; "
            + did_you_mean(name, known),
        )

    def _call(self, call: Element, prefix: str, source: str, index: int, outer: _Scope) -> Expanded:
        """The statements of one call of a block."""
        block = self.blocks[call.name]
        if call.name in outer.stack:
            chain = " -> ".join((*outer.stack, call.name))
            raise fail("E011", call.span, f"block `{call.name}` calls itself: {chain}")
        if len(outer.stack) >= MAX_NESTING:
            raise fail(
                "E006",
                call.span,
                f"blocks call blocks more than {MAX_NESTING} levels deep here "
                f"({outer.stack[0]} -> {outer.stack[1]} -> ... -> {call.name})",
                "write some of the nested blocks' statements out in the block that calls them",
            )
        self._charge(*self._cost(block), call.span)
        numbers = {INDEX: Value("number", index, call.span), **self._numbering(block, call)}
        args = evaluate_args(call.args, ChainMap(numbers, outer.env))
        bound = self._bind(block, args, call)
        where = f"{call.span.file}:{call.span.line}:{call.span.column}"
        via = f"in block `{block.name}` called at {where}"
        env = {**bound, **numbers, BLOCK_INPUT: self._input(source, call.span)}
        scope = _Scope(prefix, source, source, env, via, (*outer.stack, call.name))
        local: dict[str, str] = {}
        out = Expanded(output=source)
        present = []
        for number, inner in enumerate(block.statements):
            try:
                if inner.condition is not None and not truth(inner.condition, scope.env, "`if`"):
                    continue
                present.append(number)
                running = replace(scope, input=out.output)
                body = self._statement(inner, f"{prefix}.{inner.name}", running, local)
            except BindError as exc:
                found = [located(d, via) for d in exc.diagnostics]
                raise BindError(found[0], tuple(found[1:])) from None
            local[inner.name] = body.output
            out.nodes += body.nodes
            out.output = body.output
        if not out.nodes:
            raise fail(
                "E004", call.span, f"block `{block.name}` produced no statements for this call"
            )
        self.records.append(CallRecord(prefix, block.name, source, tuple(present), env))
        return out

    def _numbering(self, block: BlockDef, call: Element) -> dict[str, Value]:
        """`position` of this call among all the calls of `block`, and `positions`."""
        position = self.calls[block.name]
        self.calls[block.name] += 1
        total = UNCOUNTED if self.totals is None else self.totals.get(block.name, 0)
        return {
            POSITION: Value("number", position, call.span),
            POSITIONS: Value("number", total, call.span),
        }

    def _input(self, source: str, span: Pos) -> Value:
        """`in` of a call that reads `source`: a tensor whose shape `in.channels` reads."""
        towered = self.copies > 1

        def shape(at: Pos) -> tuple[int, ...]:
            """The shape of `source`, inferred now; E004 where it cannot be known."""
            if self.shape_of is None or towered:
                raise fail(
                    "E004",
                    at,
                    "a block inside `towers` cannot read the shape of its input",
                    "pass the width as an argument to this block",
                )
            return self.shape_of(source, at)

        return Value("tensor", TensorRef(BLOCK_INPUT, shape), span)

    def _cost(self, block: BlockDef) -> tuple[int, int]:
        """What one call of `block` emits itself: its op statements, and its terms."""
        if block.name not in self.costs:
            plain = [
                s for s in block.statements if not any(e.name in self.blocks for e in s.elements)
            ]
            self.costs[block.name] = (len(plain), block.size)
        return self.costs[block.name]

    def _bind(self, block: BlockDef, args: tuple[Arg, ...], call: Element) -> dict[str, Value]:
        """Parameters of a call as values, type-checked, defaults filled in."""
        params = tuple(Param(p.name, _kind(p), p.default is None) for p in block.params)
        bound = bind(block.name, args, params, call.span)  # every bad argument at once
        errors = []
        for p in block.params:
            if p.name in bound:
                continue
            bound[p.name] = evaluate(p.default, {})
            try:
                convert(Param(p.name, _kind(p)), bound[p.name], block.name)
            except BindError as exc:
                errors.append(exc)
        if errors:
            raise failures(errors)
        return bound


def _kind(param) -> str:
    """How a block parameter's written value is bound: checked against its type, if any."""
    return f"checked:{PARAM_KINDS[param.type]}" if param.type is not None else "value"


def check_block(block: BlockDef) -> None:
    """Signature checks: parameter types exist, names do not shadow ops, `in` or `index`."""
    if block.name in OPS:
        raise fail("E009", block.name_span, f"block `{block.name}` has the name of an op")
    seen = set()
    for p in block.params:
        if p.type is not None and p.type not in PARAM_KINDS:
            raise fail(
                "E004",
                p.span,
                f"unknown parameter type `{p.type}`",
                did_you_mean(p.type, PARAM_KINDS),
            )
        if p.name in (BLOCK_INPUT, INDEX, POSITION, POSITIONS) or p.name in seen:
            raise fail("E009", p.span, f"parameter `{p.name}` is reserved or repeated")
        if keyword.iskeyword(p.name):  # generated code passes parameters by name
            raise fail(
                "E015",
                p.span,
                f"parameter `{p.name}` cannot be used: it is a Python keyword",
                f"rename it, e.g. `{p.name}_value`",
            )
        seen.add(p.name)


def _repeat_count(call: Element) -> int:
    """How many times `* N` repeats a call (1 without it)."""
    if call.repeat is None:
        return 1
    n, span = call.repeat
    if not isinstance(n, int) or not 1 <= n <= MAX_REPEAT:
        raise fail("E006", span, f"`* N` needs a whole number from 1 to {MAX_REPEAT}, not {n}")
    return n


def reads(node, name: str) -> bool:
    """Whether the syntax tree under `node` reads the name `name` anywhere."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, Value) and item.kind == "name" and item.value == name:
            return True
        if is_dataclass(item):
            stack += [getattr(item, f.name) for f in fields(item)]
        elif isinstance(item, tuple):
            stack += item
    return False
