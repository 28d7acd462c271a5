"""Delta debugging over spec trees: smaller and simpler candidates of a failing spec, tried in
order (the largest reductions first) while the same disagreement persists.

Reductions: drop a statement (its readers read what it read) or a towers block, inline block
calls, drop the towers (their statements run once), drop the second input, drop an op, drop
`expect`, reset or shrink an argument, shrink the input.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator

from . import tracker
from .spec import Op, Spec, Stmt, Towers

CHUNK = 6  # candidates evaluated together (one round trip to the drivers)
SMALLER = {  # argument -> simpler values to try, in order
    "kernel": (1, 2),
    "stride": (1, 2),
    "pad": (0, 1),
    "dilation": (1,),
    "filters": (1, 2),
    "units": (1, 2),
    "size": (1, 2, (1, 2), (2, 1)),
}


def size(spec: Spec) -> tuple:
    """How big a spec is, compared in this order: statements and ops as they run (a block's
    once per call and repetition, a towers block's once per tower), arguments and `expect`s,
    blocks and towers, inputs, the sum of the numbers in the arguments, input values. Every accepted
    candidate is smaller, so shrinking ends."""
    blocks = {b.name: b for b in spec.blocks}
    runs = []  # (statement, how many times it runs)
    for item in spec.items:
        if isinstance(item, Towers):
            runs += [(s, item.count) for s in item.body]
        elif item.call and item.call.block in blocks:
            times = item.call.repeat or 1
            runs += [(s, times) for s in blocks[item.call.block].body]
        else:
            runs.append((item, 1))
    called = {s.call.block for s in spec.statements() if s.call}
    runs += [(s, 1) for b in spec.blocks if b.name not in called for s in b.body]
    ops = [(op, times) for s, times in runs for op in s.ops]
    towers = sum(isinstance(item, Towers) for item in spec.items)
    expects = sum(s.expect is not None for s, _ in runs)
    return (
        sum(times for _, times in runs),
        sum(times for _, times in ops),
        sum(len(op.args) * times for op, times in ops) + expects,
        len(spec.blocks) + towers,
        len(spec.inputs),
        sum(_number(v) * times for op, times in ops for v in op.args.values()),
        sum(math.prod(shape) for _, shape in spec.inputs),
    )


def _number(value) -> float:
    """The numbers in an argument's value, summed (0 for names and calls)."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, tuple):
        return float(sum(v for v in value if isinstance(v, int)))
    return 0.0


def shrink(
    spec: Spec, fails: Callable[[list], int | None], max_tries: int = 400, seconds: float = 180
) -> tuple[Spec, int]:
    """The smallest spec found that still fails; `fails(candidates)` gives the index of the
    first candidate that fails the same way (or None). Returns (spec, candidates tried)."""
    deadline = time.monotonic() + seconds
    tried = 0
    while tried < max_tries and time.monotonic() < deadline:
        found = None
        for batch in chunks(smaller_candidates(spec), CHUNK):
            tried += len(batch)
            index = fails(batch)
            if index is not None:
                found = batch[index]
                break
            if tried >= max_tries or time.monotonic() >= deadline:
                break
        if found is None:
            break
        spec = found
    return spec, tried


def chunks(items: Iterator, n: int) -> Iterator[list]:
    """The items in lists of n (the last one shorter)."""
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch


def smaller_candidates(spec: Spec) -> Iterator[Spec]:
    """The candidates that are smaller than `spec` and that the tracker can judge."""
    limit = size(spec)
    for candidate in candidates(spec):
        if size(candidate) < limit and documented(candidate):
            yield candidate


def documented(spec: Spec) -> bool:
    """Whether the README says what the candidate means (valid or not: the failure decides)."""
    try:
        tracker.predict(spec)
    except tracker.Undocumented:
        return False
    return True


def candidates(spec: Spec) -> Iterator[Spec]:
    """Smaller variants of `spec`, the largest reductions first."""
    yield from inline_calls(spec)
    yield from untower(spec)
    for index in reversed(range(len(spec.items))):
        yield without_item(spec, index)
    yield from without_second_input(spec)
    yield from unused_blocks(spec)
    yield from without_expects(spec)
    yield from without_ops(spec)
    yield from simpler_arguments(spec)
    yield from smaller_inputs(spec)


def previous_name(spec: Spec, index: int) -> str:
    """What item `index` reads without `from`: the item before it, or the first input."""
    if index == 0:
        return spec.inputs[0][0]
    item = spec.items[index - 1]
    return item.body[-1].name if isinstance(item, Towers) else item.name


def renamed(spec: Spec, old: str, new: str) -> None:
    """Make every statement that reads `old` read `new` (a merge of one name becomes `from`)."""
    for stmt in spec.statements():
        if stmt.source == old:
            stmt.source = new
        if stmt.merge:
            names = list(dict.fromkeys(new if n == old else n for n in stmt.merge[1]))
            stmt.merge = (stmt.merge[0], names) if len(names) > 1 else None
            if len(names) == 1:
                stmt.source = names[0]


def without_item(spec: Spec, index: int) -> Spec:
    """The spec without item `index`; its readers read what it read."""
    out = copy.deepcopy(spec)
    item = out.items.pop(index)
    if not out.items:
        return spec  # the same spec: never accepted as smaller
    if isinstance(item, Towers):
        reads = previous_name(spec, index)
        for stmt in item.body:
            renamed(out, stmt.name, reads)
        return out
    reads = item.source or (item.merge[1][0] if item.merge else previous_name(spec, index))
    renamed(out, item.name, reads)
    if index < len(out.items) and isinstance(out.items[index], Stmt):
        following = out.items[index]
        if not following.source and not following.merge and reads != previous_name(out, index):
            following.source = reads
    return out


def inline_calls(spec: Spec) -> Iterator[Spec]:
    """Every block call replaced by the statements it expands to (and `* N` made `* 1`)."""
    calls = [i for i, s in enumerate(spec.items) if isinstance(s, Stmt) and s.call]
    if not calls:
        return
    for index in calls:
        stmt = spec.items[index]
        if stmt.call.repeat and stmt.call.repeat > 1:
            out = copy.deepcopy(spec)
            out.items[index].call.repeat = 1
            yield out
    try:
        expander = tracker.Expander(spec)
        expander.run()
    except (tracker.SpecError, tracker.Undocumented):
        return
    out = copy.deepcopy(spec)
    for index in reversed(calls):
        stmt = out.items[index]
        last = expander.alias[stmt.name]
        prefix = f"{stmt.name}_"
        expanded = [
            node_statement(node, expander.alias)
            for name, node in expander.nodes.items()
            if name.startswith(prefix)
        ]
        out.items[index : index + 1] = expanded
        renamed(out, stmt.name, last)
    out.blocks = []
    yield out


def node_statement(node: tracker.Node, alias: dict) -> Stmt:
    """A plain statement computing what an expanded node computes (a call statement it reads
    is read as the call's last node)."""
    ops = [Op(op.kind, dict(op.args)) for op in node.ops]
    inputs = [alias.get(n, n) for n in node.inputs]
    if node.merge:
        return Stmt(node.name, ops, merge=(node.merge, inputs))
    return Stmt(node.name, ops, source=inputs[0])


def untower(spec: Spec) -> Iterator[Spec]:
    """Towers of 3 as towers of 2, and towers' statements run once."""
    for index, item in enumerate(spec.items):
        if isinstance(item, Towers):
            if item.count > 2:
                out = copy.deepcopy(spec)
                out.items[index].count = 2
                yield out
            out = copy.deepcopy(spec)
            body = out.items[index].body
            for stmt in body:
                stmt.tower_merge = False
            out.items[index : index + 1] = body
            yield out


def without_second_input(spec: Spec) -> Iterator[Spec]:
    """The second input's readers read the first."""
    if len(spec.inputs) > 1:
        out = copy.deepcopy(spec)
        name, _ = out.inputs.pop()
        renamed(out, name, out.inputs[0][0])
        yield out


def unused_blocks(spec: Spec) -> Iterator[Spec]:
    """Blocks no statement calls, removed."""
    called = {s.call.block for s in spec.statements() if s.call}
    if any(b.name not in called for b in spec.blocks):
        out = copy.deepcopy(spec)
        out.blocks = [b for b in out.blocks if b.name in called]
        yield out


def all_statements(spec: Spec) -> list:
    """Top-level, towers and block statements."""
    return spec.statements() + [s for b in spec.blocks for s in b.body]


def without_ops(spec: Spec) -> Iterator[Spec]:
    """Each op removed (a statement keeps at least one op or merge)."""
    for s_index, stmt in enumerate(all_statements(spec)):
        for o_index in range(len(stmt.ops)):
            if len(stmt.ops) == 1 and not stmt.merge and not stmt.tower_merge:
                continue
            out = copy.deepcopy(spec)
            del all_statements(out)[s_index].ops[o_index]
            yield out


def without_expects(spec: Spec) -> Iterator[Spec]:
    """Every `expect` removed."""
    if any(s.expect for s in spec.statements()):
        out = copy.deepcopy(spec)
        for stmt in out.statements():
            stmt.expect = None
        yield out


def simpler_arguments(spec: Spec) -> Iterator[Spec]:
    """Each argument dropped (its default), or made smaller; positional ones written by name."""
    for s_index, stmt in enumerate(all_statements(spec)):
        for o_index, op in enumerate(stmt.ops):
            for name, value in op.args.items():
                options = [None, *SMALLER.get(name, ())]
                for option in options:
                    if option == value:
                        continue
                    out = copy.deepcopy(spec)
                    target = all_statements(out)[s_index].ops[o_index]
                    target.positional = 0
                    if option is None:
                        del target.args[name]
                    else:
                        target.args[name] = option
                    yield out


def smaller_inputs(spec: Spec) -> Iterator[Spec]:
    """Each input dimension 1, halved, or one less."""
    for index, (name, shape) in enumerate(spec.inputs):
        for axis, d in enumerate(shape):
            for smaller in dict.fromkeys((1, d // 2, d - 1)):
                if 1 <= smaller < d:
                    out = copy.deepcopy(spec)
                    new = list(shape)
                    new[axis] = smaller
                    out.inputs[index] = (name, tuple(new))
                    yield out
