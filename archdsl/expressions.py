"""Evaluating argument expressions (`planes * 4`, `2 if index == 0 else 1`, `max(8, w // 4)`,
`stride == 1 and in.channels == out`) to literal values."""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from archdsl.binding import fail
from archdsl.diagnostics import did_you_mean
from archdsl.syntax import MAX_DIGITS, MAX_SIZE, Arg, Value

LITERAL_KINDS = ("number", "dims", "name")
# what `in.ATTRIBUTE` reads of the block input's shape: the index of its size
SHAPE_ATTRIBUTES = {"channels": 0, "height": 1, "width": 2, "length": 0, "dim": 1}
# the sizes each layout (by rank) has: a vector's one size reads as `channels`, a token
# sequence's L x D as `length` and `dim`
LAYOUT_ATTRIBUTES = {1: ("channels",), 2: ("length", "dim"), 3: ("channels", "height", "width")}
ARITHMETIC = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "//": operator.floordiv,
    "/": operator.truediv,
}
COMPARISONS = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
# the functions an expression may call on numbers: `max(8, width // 4)`
NUMBER_FUNCTIONS = {"max": max, "min": min}
# what a condition that is not `true` or `false` is told
CONDITION_HINT = "a condition is `true`, `false` or a comparison such as `stride != 1`"


@dataclass(frozen=True)
class TensorRef:
    """A tensor whose shape an expression may read (`in.channels`), as a "tensor" Value's value:
    how it is written, and a function giving its shape for the expression at a span."""

    written: str
    shape: Callable[..., tuple[int, ...]]


def evaluate(v: Value, env: Mapping[str, Value]) -> Value:
    """`v` with parameters substituted and expressions computed, located where it was written."""
    if v.kind == "name":
        bound = env.get(v.value)
        return replace(bound, span=v.span) if bound is not None else v
    if v.kind in ("number", "dims"):
        return v
    if v.kind == "call":
        if v.value in NUMBER_FUNCTIONS:
            return _number_function(v, env)
        return replace(v, args=evaluate_args(v.args, env))
    if v.kind == "list":
        return replace(v, value=tuple(evaluate(item, env) for item in v.value))
    if v.kind == "attribute":
        return _attribute(v, env)
    return _compute(v, env)


def _attribute(v: Value, env: Mapping[str, Value]) -> Value:
    """`in.channels`, `in.height`, `in.width` (`in.length`, `in.dim` of tokens): a size of the
    block input's shape."""
    name, attribute = v.value
    bound = env.get(name)
    if bound is None or bound.kind != "tensor":
        raise fail(
            "E010",
            v.span,
            f"`{name}.{attribute}`: `{name}` has no shape to read",
            "inside a block, `in.channels`, `in.height` and `in.width` read the input's shape "
            "(`in.length` and `in.dim` a token sequence's)",
        )
    if attribute not in SHAPE_ATTRIBUTES:
        raise fail(
            "E003",
            v.span,
            f"`{name}` has no attribute `{attribute}`",
            did_you_mean(attribute, SHAPE_ATTRIBUTES),
        )
    shape = bound.value.shape(v.span)
    size = shape_size(shape, attribute)
    if size is None:
        raise fail("E018", v.span, *_no_such_size(name, attribute, shape))
    return Value("number", size, v.span)


def shape_size(shape: tuple[int, ...], attribute: str) -> int | None:
    """The size `in.ATTRIBUTE` reads off `shape`, or None where its layout has no such size."""
    if attribute not in LAYOUT_ATTRIBUTES.get(len(shape), ()):
        return None
    return shape[SHAPE_ATTRIBUTES[attribute]]


def _no_such_size(name: str, attribute: str, shape: tuple[int, ...]) -> tuple[str, str]:
    """E018's message and hint for a size the shape's layout does not have."""
    if len(shape) == 1:
        return (
            f"`{name}.{attribute}`: `{name}` is a vector of {shape[0]} features, not a map",
            f"`{name}.channels` reads its number of features",
        )
    sizes = ", ".join(f"`{name}.{a}`" for a in LAYOUT_ATTRIBUTES.get(len(shape), ()))
    what = "an L x D token sequence" if len(shape) == 2 else "a C x H x W map"
    dims = " x ".join(map(str, shape))
    return f"`{name}.{attribute}`: `{name}` is {what} ({dims})", f"{sizes} read its sizes"


def _number_function(v: Value, env: Mapping[str, Value]) -> Value:
    """`max(a, b, ...)`, `min(...)`: the largest or smallest of two or more numbers, as written
    (a whole number stays whole)."""
    for arg in v.args:
        if arg.key is not None:
            raise fail(
                "E004",
                arg.span,
                f"`{v.value}` takes no keyword arguments",
                f"write `{v.value}(a, b, ...)`",
            )
    if len(v.args) < 2:
        raise fail(
            "E004",
            v.span,
            f"`{v.value}` needs two or more numbers, got {len(v.args)}",
            f"e.g. `{v.value}(8, width // 4)`",
        )
    numbers = [_number(evaluate(a.value, env), v.value) for a in v.args]
    return Value("number", NUMBER_FUNCTIONS[v.value](numbers), v.span)


def evaluate_args(args: tuple[Arg, ...], env: Mapping[str, Value]) -> tuple[Arg, ...]:
    """Every argument evaluated."""
    return tuple(replace(a, value=evaluate(a.value, env)) for a in args)


def truth(v: Value, env: Mapping[str, Value], what: str) -> bool:
    """A condition's value: `true` or `false` after evaluation."""
    result = evaluate(v, env)
    if result.kind == "name" and result.value in ("true", "false"):
        return result.value == "true"
    hint = CONDITION_HINT if result.kind == "number" else ""
    raise fail("E004", v.span, f"{what} must be `true` or `false`, got {_show(result)}", hint)


def _compute(v: Value, env: Mapping[str, Value]) -> Value:
    """Binary, comparison, negation, `not`, `and`, `or` and conditional expressions."""
    if v.kind == "conditional":
        then, cond, otherwise = v.value
        return evaluate(then if truth(cond, env, "the condition") else otherwise, env)
    if v.kind == "not":
        return _bool(not truth(v.value[0], env, "the operand of `not`"), v)
    if v.kind in ("and", "or"):
        return _bool(_logical(v, env), v)
    if v.kind == "negate":
        sign, operand = v.value
        x = _number(evaluate(operand, env), sign)
        return Value("number", -x if sign == "-" else x, v.span)
    op, left, right = v.value
    a, b = evaluate(left, env), evaluate(right, env)
    if v.kind == "compare":
        if op in ("==", "!="):
            return _bool(COMPARISONS[op](_literal(a), _literal(b)), v)
        return _bool(COMPARISONS[op](_number(a, op), _number(b, op)), v)
    x, y = _number(a, op), _number(b, op)
    if op == "//" and (y == 0 or not isinstance(x, int) or not isinstance(y, int)):
        raise fail("E004", v.span, "`//` needs whole numbers and a non-zero divisor")
    if op == "/" and y == 0:
        raise fail(
            "E004",
            v.span,
            "`/` needs a non-zero divisor",
            "the divisor is 0 for this call (`positions - 1` is 0 for a block called once)",
        )
    result = ARITHMETIC[op](x, y)
    if isinstance(result, int) and abs(result) >= 10**MAX_DIGITS:
        raise fail(
            "E006",
            v.span,
            f"this expression's value is too large (more than {MAX_DIGITS} digits)",
            f"sizes and counts are at most {MAX_SIZE}",
        )
    return Value("number", result, v.span)


def _logical(v: Value, env: Mapping[str, Value]) -> bool:
    """`a and b`, `a or b`, short-circuiting as Python: `b` is evaluated only when it decides."""
    left, right = v.value
    what = f"each side of `{v.kind}`"
    decided = truth(left, env, what)
    if decided == (v.kind == "or"):
        return decided
    return truth(right, env, what)


def _literal(v: Value):
    """A value's comparable content."""
    if v.kind not in LITERAL_KINDS:
        raise fail("E004", v.span, f"cannot compare {_show(v)}")
    return v.value


def _number(v: Value, op: str) -> int | float:
    """A numeric operand of `op`."""
    if v.kind != "number":
        raise fail("E004", v.span, f"`{op}` needs numbers, got {_show(v)}")
    return v.value


def _bool(flag: bool, v: Value) -> Value:
    return Value("name", "true" if flag else "false", v.span)


def _show(v: Value) -> str:
    """How a value reads in a message."""
    if v.kind == "tensor":
        return f"the tensor `{v.value.written}`"
    if v.kind in ("number", "name"):
        return f"`{v.value}`"
    if v.kind == "dims":
        return "`" + " x ".join(map(str, v.value)) + "`"
    return f"a {v.kind}"
