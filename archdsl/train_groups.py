"""The train block's fine-tuning groups, checked against the spec's statements.

`freeze = [stem, layer1]` fixes the named statements' parameters and batch-norm statistics;
`lr_scale = [layer4(0.1), head(10)]` multiplies their learning rate by a factor. A name is a
statement as written at the top level of the spec: a plain statement, a block-call statement
(`layer1 = basic(64) * 2` covers `layer1.0.conv1`, ...), or a statement inside `towers N { }`
(covering `conv1_t0`, `conv1_t1`, ...). The IR keeps the prefixes of the tensor names each
covers, which is what the runtimes match (`layer1` covers `layer1.0.conv1.conv.weight`).
"""

from __future__ import annotations

from archdsl import ir
from archdsl.binding import BindError, fail, failures
from archdsl.diagnostics import did_you_mean
from archdsl.expressions import evaluate
from archdsl.ops import REGISTRY
from archdsl.ops.spec import no_tensors
from archdsl.syntax import Setting, Value

GROUP_SETTINGS = ("freeze", "lr_scale")
FREEZE_EXAMPLE = "e.g. `freeze = [stem, layer1]`"
SCALE_EXAMPLE = "e.g. `lr_scale = [layer4(0.1)]`: layer4 learns at a tenth of the rate"


def written_name(stmt: ir.Statement) -> str:
    """The name the spec gives the statement at its top level."""
    if "." in stmt.name:
        return stmt.name.split(".", 1)[0]
    if stmt.tower is not None:
        return stmt.name.rsplit("_t", 1)[0]
    return stmt.name


def _prefix(stmt: ir.Statement) -> str:
    """The tensor-name prefix the runtimes match for a statement of a written name."""
    return written_name(stmt) if "." in stmt.name else stmt.name


def covered(statement: str, prefixes) -> bool:
    """Whether a statement (or tensor) name lies under one of the prefixes."""
    return any(statement == p or statement.startswith(p + ".") for p in prefixes)


def holds_tensors(stmt: ir.Statement) -> bool:
    """Whether any op of the statement has parameters or statistics."""
    return any(REGISTRY[op.op].tensors is not no_tensors for op in stmt.ops)


class Groups:
    """The statements a spec's group settings may name, by written name."""

    def __init__(self, statements: list[ir.Statement], failed: set[str]):
        """`failed`: statements whose errors are reported (their names are known)."""
        self.covered: dict[str, list[ir.Statement]] = {}
        for stmt in statements:
            self.covered.setdefault(written_name(stmt), []).append(stmt)
        self.failed = {name.split(".", 1)[0] for name in failed}

    def prefixes(self, item: Value, setting: str) -> tuple[str, ...]:
        """The tensor-name prefixes of one written name; BindError if it names no statement
        or one without parameters."""
        name = item.value
        if name not in self.covered:
            known = [*self.covered, *self.failed]
            raise fail(
                "E010",
                item.span,
                f"`{setting}`: no statement `{name}` in the spec",
                did_you_mean(name, known) if known else "",
            )
        stmts = self.covered[name]
        if not any(holds_tensors(s) for s in stmts):
            raise fail(
                "E019",
                item.span,
                f"`{setting}`: `{name}` has no parameters",
                "name statements with conv, dense or norm layers",
            )
        return tuple(dict.fromkeys(_prefix(s) for s in stmts if holds_tensors(s)))

    def unfrozen(self, frozen: set[str]) -> bool:
        """Whether any statement with parameters is outside the frozen prefixes."""
        return any(
            holds_tensors(s) and _prefix(s) not in frozen
            for stmts in self.covered.values()
            for s in stmts
        )


def _items(v: Value, setting: str, example: str) -> tuple[Value, ...]:
    """The entries of a list setting (a single entry may stand alone); none is an error."""
    items = v.value if v.kind == "list" else (v,)
    if not items:
        raise fail("E019", v.span, f"`{setting}` is empty", f"leave it out, or {example}")
    return items


def _once(items: list[tuple[Value, str]], setting: str) -> None:
    """E016 for a name given twice in one setting."""
    seen: set[str] = set()
    for item, name in items:
        if name in seen:
            raise fail("E016", item.span, f"`{setting}`: `{name}` given twice")
        seen.add(name)


def group_setting(setting: Setting, groups: Groups) -> tuple[tuple, dict[str, Value]]:
    """(the IR value, {written name: its entry}) of a `freeze` or `lr_scale` setting."""
    v = evaluate(setting.value, {})
    return freeze(v, groups) if setting.key == "freeze" else lr_scale(v, groups)


def freeze(v: Value, groups: Groups) -> tuple[tuple[str, ...], dict[str, Value]]:
    """(prefixes, {written name: its entry}) of `freeze = [names]`."""
    entries, errors = [], []
    for item in _items(v, "freeze", FREEZE_EXAMPLE):
        if item.kind != "name":
            errors.append(fail("E019", item.span, "`freeze` takes statement names", FREEZE_EXAMPLE))
            continue
        entries.append((item, item.value))
    if errors:
        raise failures(errors)
    _once(entries, "freeze")
    prefixes = _checked(entries, groups, "freeze")
    if not groups.unfrozen({p for group in prefixes for p in group}):
        raise fail(
            "E019",
            v.span,
            "`freeze` fixes every parameter of the model: nothing is left to train",
            "leave the new layers (e.g. the head) out of `freeze`",
        )
    frozen = tuple(p for group in prefixes for p in group)
    return frozen, {name: item for item, name in entries}


def lr_scale(v: Value, groups: Groups) -> tuple[tuple[tuple[str, float], ...], dict]:
    """((prefix, factor), ...) and {written name: its entry} of `lr_scale = [name(f), ...]`."""
    entries, factors, errors = [], [], []
    for item in _items(v, "lr_scale", SCALE_EXAMPLE):
        try:
            factors.append(_factor(item))
            entries.append((item, item.value))
        except BindError as exc:
            errors.append(exc)
    if errors:
        raise failures(errors)
    _once(entries, "lr_scale")
    prefixes = _checked(entries, groups, "lr_scale")
    scaled = tuple(
        (p, factor) for group, factor in zip(prefixes, factors, strict=True) for p in group
    )
    return scaled, {name: item for item, name in entries}


def _checked(entries, groups: Groups, setting: str) -> list[tuple[str, ...]]:
    """Every entry's prefixes, all its errors reported together."""
    found, errors = [], []
    for item, _ in entries:
        try:
            found.append(groups.prefixes(item, setting))
        except BindError as exc:
            errors.append(exc)
    if errors:
        raise failures(errors)
    return found


def _factor(item: Value) -> float:
    """The factor of one `name(factor)` entry: a number > 0."""
    if item.kind != "call" or len(item.args) != 1 or item.args[0].key is not None:
        raise fail("E019", item.span, "`lr_scale` entries are `name(factor)`", SCALE_EXAMPLE)
    value = item.args[0].value
    if value.kind != "number":
        raise fail("E019", value.span, "an `lr_scale` factor is a number", SCALE_EXAMPLE)
    if value.value <= 0:
        raise fail(
            "E019",
            value.span,
            f"`lr_scale`: the factor of `{item.value}` must be > 0, got {value.value}",
            f"to keep `{item.value}` fixed, put it in `freeze`",
        )
    return float(value.value)


def check_overlap(frozen: dict[str, Value], scaled: dict[str, Value]) -> None:
    """E019 for a statement both frozen and given a learning-rate factor."""
    both = [name for name in scaled if name in frozen]
    if both:
        raise failures(
            [
                fail(
                    "E019",
                    scaled[name].span,
                    f"`{name}` is frozen: `lr_scale` cannot scale its learning rate",
                    f"take `{name}` out of `freeze` or out of `lr_scale`",
                )
                for name in both
            ]
        )
