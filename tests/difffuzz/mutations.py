"""Mutations of valid specs, most of which the tracker calls invalid (and predicts the code):
a window too large (E007), groups that do not divide (E008), dense on a map (E012), a map op
on a vector (E018), concat / add that do not fit (E013), pool padding over half the kernel or
a wrong kind of value (E004), a zero size (E006), an unknown op or argument (E002, E003), a
missing or doubled argument (E005, E016), names defined twice, undefined, cyclic or reserved
(E009, E010, E011, E015), and an `expect` that does not hold (E014).

Each changes one top-level statement, so the diagnostic's line is that statement's.
"""

from __future__ import annotations

import copy
import random

from . import tracker
from .spec import Op, Spec, Stmt

MAP_OPS_ON_VECTORS = (
    Op("conv", {"filters": 2, "kernel": 1}, 1),
    Op("maxpool", {"kernel": 1}),
    Op("lrn"),
    Op("resize", {"size": (2, 2)}),
    Op("global_avgpool"),
    Op("adaptive_avgpool", {"size": 1}),
    Op("conv_transpose", {"filters": 2, "kernel": 2}, 1),
    Op("upsample"),
)
REQUIRED = {
    "conv": "filters",
    "dense": "units",
    "resize": "size",
    "adaptive_avgpool": "size",
    "stochastic_depth": "p",
    "conv_transpose": "filters",
}


def statements(spec: Spec) -> list:
    """The top-level statements with ops (not block calls, not inside towers)."""
    return [s for s in spec.items if isinstance(s, Stmt) and not s.call]


def ops_of(spec: Spec, kinds) -> list:
    """(statement, op) pairs of the given kinds."""
    return [(s, op) for s in statements(spec) for op in s.ops if op.kind in kinds]


def window_too_large(spec, rng) -> bool:
    """A conv or pool kernel larger than any map here (E007)."""
    found = ops_of(spec, ("conv", "maxpool", "avgpool"))
    if not found:
        return False
    _, op = rng.choice(found)
    op.args["kernel"] = rng.choice((40, (1, 41), (33, 2)))
    op.args.pop("pad", None)
    return True


def bad_groups(spec, rng) -> bool:
    """groups of 5 or 7 (E008 unless they divide)."""
    found = ops_of(spec, ("conv", "conv_transpose"))
    if not found:
        return False
    _, op = rng.choice(found)
    op.args["groups"] = rng.choice((5, 7))
    if rng.random() < 0.5:
        op.args["filters"] = op.args["groups"]
    return True


def inserted(spec, rng, op: Op, after_flatten: bool) -> bool:
    """Put `op` into a statement (after a flatten when there is one and asked to)."""
    found = statements(spec)
    if not found:
        return False
    flats = [(s, i) for s in found for i, o in enumerate(s.ops) if o.kind == "flatten"]
    if after_flatten and flats:
        stmt, index = rng.choice(flats)
        stmt.ops.insert(index + 1, copy.deepcopy(op))
    else:
        stmt = rng.choice(found)
        stmt.ops.insert(rng.randint(0, len(stmt.ops)), copy.deepcopy(op))
    return True


def dense_on_map(spec, rng) -> bool:
    """dense somewhere (E012 on a map)."""
    return inserted(spec, rng, Op("dense", {"units": 3}, 1), after_flatten=False)


def map_op_on_vector(spec, rng) -> bool:
    """A map op after a flatten (E018)."""
    return inserted(spec, rng, rng.choice(MAP_OPS_ON_VECTORS), after_flatten=True)


def misfit_merge(spec, rng) -> bool:
    """A merge of another name, or a new merge of two names (E013 unless they fit)."""
    names = [n for n, _ in spec.inputs] + [s.name for s in statements(spec)]
    merges = [s for s in statements(spec) if s.merge]
    if merges and rng.random() < 0.7:
        stmt = rng.choice(merges)
        inputs = list(stmt.merge[1])
        inputs[rng.randrange(len(inputs))] = rng.choice(names)
        stmt.merge = (stmt.merge[0], inputs)
        return True
    last = spec.items[-1]
    if not isinstance(last, Stmt) or last.call or last.merge or len(names) < 2:
        return False
    pair = rng.sample(names[:-1], min(2, len(names) - 1))
    kind = rng.choice(("concat", "add", "mul"))
    spec.items.insert(len(spec.items) - 1, Stmt("misfit", [], merge=(kind, pair)))
    last.source = last.source or "misfit"
    return True


def pool_padding(spec, rng) -> bool:
    """Pool padding of half the kernel plus one (E004)."""
    found = [(s, op) for s, op in ops_of(spec, ("maxpool", "avgpool"))]
    if not found:
        return False
    _, op = rng.choice(found)
    kernel = rng.randint(1, 4)
    op.args["kernel"], op.args["pad"] = kernel, kernel // 2 + 1
    op.args.pop("ceil", None)
    op.positional = min(op.positional, 1)
    return True


def wrong_value(spec, rng) -> bool:
    """A value of the wrong kind (E004)."""
    choices = [
        (("conv", "maxpool", "avgpool"), "ceil", 3),
        (("avgpool",), "count_pad", "yes"),
        (("resize",), "mode", "cubic"),
        (("conv", "maxpool"), "kernel", "same"),
        (("dense",), "units", 2.5),
        (("gelu",), "approximate", "erf"),
        (("stochastic_depth",), "p", 1.5),
        (("conv_transpose",), "output_pad", 3),
        (("conv_transpose",), "pad", "same"),
        (("upsample",), "mode", "bicubic"),
    ]
    kinds, name, value = rng.choice(choices)
    found = ops_of(spec, kinds)
    if not found:
        return False
    _, op = rng.choice(found)
    op.args[name] = value
    op.positional = min(op.positional, list(op.args).index(name))
    return True


def zero_size(spec, rng) -> bool:
    """A zero size (E006)."""
    choices = [
        (("conv",), "filters", 0),
        (("conv", "maxpool", "avgpool"), "kernel", 0),
        (("conv",), "stride", (1, 0)),
        (("dense",), "units", 0),
        (("resize",), "size", (0, 3)),
        (("upsample",), "scale", (2, 0)),
    ]
    kinds, name, value = rng.choice(choices)
    found = ops_of(spec, kinds)
    if not found:
        return False
    _, op = rng.choice(found)
    op.args[name] = value
    op.positional = min(op.positional, list(op.args).index(name))
    return True


def unknown_op(spec, rng) -> bool:
    """An op the language does not have (E002)."""
    found = [(s, op) for s in statements(spec) for op in s.ops]
    if not found:
        return False
    _, op = rng.choice(found)
    op.kind = rng.choice(("convolution", "maxpooling", "relu7", "Dense"))
    return True


def unknown_argument(spec, rng) -> bool:
    """An argument the op does not have (E003)."""
    found = ops_of(spec, ("conv", "maxpool", "dense", "lrn"))
    if not found:
        return False
    _, op = rng.choice(found)
    op.args[rng.choice(("strides", "padding", "kernel_size", "use_bias"))] = 1
    return True


def missing_argument(spec, rng) -> bool:
    """A required argument left out (E005)."""
    found = ops_of(spec, tuple(REQUIRED))
    if not found:
        return False
    _, op = rng.choice(found)
    op.args.pop(REQUIRED[op.kind], None)
    op.positional = 0
    return True


def doubled_argument(spec, rng) -> bool:
    """A positional argument given again by name (E016)."""
    found = [(s, op) for s, op in ops_of(spec, tuple(REQUIRED)) if op.positional]
    if not found:
        return False
    _, op = rng.choice(found)
    first = next(iter(op.args))
    op.again = ((first, op.args[first]),)
    return True


def duplicate_name(spec, rng) -> bool:
    """A statement named as an earlier one (E009)."""
    found = statements(spec)
    if len(found) < 2:
        return False
    first, second = sorted(rng.sample(range(len(found)), 2))
    found[second].name = found[first].name
    return True


def undefined_name(spec, rng) -> bool:
    """`from nowhere` (E010)."""
    found = statements(spec)
    if not found:
        return False
    stmt = rng.choice(found)
    if stmt.merge:
        stmt.merge = (stmt.merge[0], [*stmt.merge[1][:-1], "nowhere"])
    else:
        stmt.source = "nowhere"
    return True


def cycle(spec, rng) -> bool:
    """The first statement reading the last (E011 when the last reads the first)."""
    found = statements(spec)
    if len(found) < 2 or found[0].merge:
        return False
    found[0].source = found[-1].name
    return True


def wrong_expect(spec, rng) -> bool:
    """An `expect` of some other shape (E014 unless it happens to hold)."""
    found = statements(spec)
    if not found:
        return False
    stmt = rng.choice(found)
    stmt.expect = rng.choice(((1,), (1, 1, 1), (3, 3, 3), (7,)))
    return True


def reserved_name(spec, rng) -> bool:
    """A statement named `forward` (E015)."""
    found = statements(spec)
    if not found:
        return False
    stmt = rng.choice(found)
    old, stmt.name = stmt.name, "forward"
    for other in spec.statements():
        if other.source == old:
            other.source = "forward"
        if other.merge:
            other.merge = (other.merge[0], ["forward" if n == old else n for n in other.merge[1]])
    return True


MUTATIONS = (
    window_too_large,
    bad_groups,
    dense_on_map,
    map_op_on_vector,
    misfit_merge,
    pool_padding,
    wrong_value,
    zero_size,
    unknown_op,
    unknown_argument,
    missing_argument,
    doubled_argument,
    duplicate_name,
    undefined_name,
    cycle,
    wrong_expect,
    reserved_name,
)


def mutate(spec: Spec, seed) -> Spec | None:
    """A copy of `spec` with one random mutation (None when the drawn one does not apply)."""
    rng = random.Random(f"mutate:{seed}")
    mutant = copy.deepcopy(spec)
    if not rng.choice(MUTATIONS)(mutant, rng):
        return None
    try:
        tracker.predict(mutant)
    except tracker.Undocumented:
        return None
    return mutant
