"""Binding written arguments to a signature and converting each value to its kind."""

from __future__ import annotations

import math
from typing import Any

from archdsl import ir
from archdsl.diagnostics import Diagnostic, did_you_mean, error
from archdsl.signatures import INITS, Param
from archdsl.syntax import MAX_SIZE, Arg, Value


class BindError(Exception):
    """Carries the diagnostic of a bad argument (`diagnostics`: of every bad argument of a call,
    the first being `diagnostic`)."""

    def __init__(self, diagnostic: Diagnostic, more: tuple[Diagnostic, ...] = ()):
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic
        self.diagnostics = (diagnostic, *more)


def failures(errors: list[BindError]) -> BindError:
    """One BindError carrying the diagnostics of all of `errors`, in order."""
    found = [d for e in errors for d in e.diagnostics]
    return BindError(found[0], tuple(found[1:]))


def fail(code: str, span: ir.Span, message: str, hint: str = "") -> BindError:
    """A BindError with an error diagnostic."""
    return BindError(error(code, span, message, hint))


def bind(
    callee: str,
    args: tuple[Arg, ...],
    params: tuple[Param, ...],
    span: ir.Span,
    spans: dict | None = None,
    bound: dict[str, Any] | None = None,
) -> dict:
    """Match positional and keyword arguments to `params`; convert each; check required ones.

    Every bad argument is reported (one BindError carrying them all). `spans`, when given,
    receives where each bound argument's value was written; `bound`, when given, receives
    the converted arguments (also those of a call that fails) and is returned.
    """
    bound = {} if bound is None else bound
    names = [p.name for p in params]
    given: set[str] = set()  # written, converted or not
    errors: list[BindError] = []
    unplaced = False  # an argument that fits no parameter may be the missing one: no E005
    seen_keyword = False
    for index, arg in enumerate(args):
        seen_keyword = seen_keyword or arg.key is not None
        try:
            try:
                param = _parameter(callee, arg, index, params, seen_keyword, len(args))
            except BindError:
                unplaced = True
                raise
            if param.name in given:
                raise fail("E016", arg.span, f"argument `{param.name}` of `{callee}` given twice")
            given.add(param.name)
            bound[param.name] = convert(param, arg.value, callee)
        except BindError as exc:
            errors.append(exc)
            continue
        if spans is not None:
            spans[param.name] = arg.value.span
    errors += [
        fail(
            "E005",
            span,
            f"`{callee}` needs argument `{p.name}`",
            f"write it as `{p.name}=...` or in position {names.index(p.name) + 1}",
        )
        for p in params
        if p.required and p.name not in given and not unplaced
    ]
    if errors:
        raise failures(errors)
    return bound


def _parameter(
    callee: str, arg: Arg, index: int, params: tuple[Param, ...], after_keyword: bool, count: int
) -> Param:
    """The parameter an argument is written for (by position or by name)."""
    names = [p.name for p in params]
    if arg.key is None:
        if after_keyword:
            raise fail("E016", arg.span, f"positional argument after a keyword in `{callee}`")
        if index >= len(params):
            raise fail(
                "E016",
                arg.span,
                f"`{callee}` takes at most {len(params)} positional argument(s), got {count}",
                f"arguments in order: {', '.join(names) or 'none'}",
            )
        return params[index]
    if arg.key not in names:
        raise fail(
            "E003",
            arg.span,
            f"`{callee}` has no argument `{arg.key}`",
            did_you_mean(arg.key, names or ["(no arguments)"]),
        )
    return params[names.index(arg.key)]


def convert(param: Param, v: Value, callee: str) -> Any:
    """Convert one written value to what `param.kind` asks for."""
    kind = param.kind
    where = f"`{param.name}` of `{callee}`"
    if kind.startswith("choice:"):
        return _choice(v, kind[len("choice:") :].split("|"), where)
    if kind.startswith("checked:"):  # a block's typed parameter: checked, kept as written
        convert(Param(param.name, kind[len("checked:") :]), v, callee)
        return v
    return CONVERTERS[kind](v, where)


def _number(v: Value, where: str) -> float:
    if v.kind != "number":
        hint = "write a number such as 0.5 or 1e-6"
        raise fail("E004", v.span, f"{where} must be a number, not {_describe(v)}", hint)
    if not math.isfinite(v.value):
        raise fail("E004", v.span, f"{where} must be a finite number")
    return v.value


def _int(v: Value, where: str) -> int:
    if v.kind != "number" or not isinstance(v.value, int):
        raise fail("E004", v.span, f"{where} must be a whole number, not {_describe(v)}")
    return v.value


def _count(v: Value, where: str) -> int:
    n = _int(v, where)
    if n <= 0:
        raise fail("E006", v.span, f"{where} must be positive, got {n}")
    return _at_most_max(n, v, where)


def _opt_int(v: Value, where: str) -> int | None:
    if v.kind == "name" and v.value == "none":
        return None
    n = _int(v, where)
    if n < 0:
        raise fail("E006", v.span, f"{where} must not be negative, got {n}")
    return _at_most_max(n, v, where)


def _at_most_max(n: int, v: Value, where: str) -> int:
    """`n` unless it is larger than MAX_SIZE."""
    if n > MAX_SIZE:
        raise fail("E006", v.span, f"{where} is too large ({n}); at most {MAX_SIZE}")
    return n


def _nonneg(v: Value, where: str) -> float:
    x = _number(v, where)
    if x < 0:
        raise fail("E006", v.span, f"{where} must not be negative, got {x}")
    return x


def _pair(v: Value, where: str) -> tuple[int, int]:
    """A positive size: a whole number or H x W (a kernel, a stride)."""
    return _sizes(v, where, 1, "be positive")


def _size(v: Value, where: str) -> tuple[int, int]:
    """A size that may be zero: a whole number or H x W (a block parameter typed `size`)."""
    return _sizes(v, where, 0, "not be negative")


def _sizes(v: Value, where: str, least: int, rule: str) -> tuple[int, int]:
    """A whole number or H x W, each at least `least` (else E006: `where` must `rule`)."""
    if v.kind == "dims" and len(v.value) == 2:
        h, w = v.value
    elif v.kind == "number" and isinstance(v.value, int):
        h = w = v.value
    else:
        raise fail("E004", v.span, f"{where} must be a whole number or H x W, not {_describe(v)}")
    if min(h, w) < least:
        raise fail("E006", v.span, f"{where} must {rule}, got {h} x {w}")
    if max(h, w) > MAX_SIZE:
        raise fail("E006", v.span, f"{where} is too large; at most {MAX_SIZE}")
    return (h, w)


def _pad(v: Value, where: str):
    if v.kind == "name" and v.value in ("same", "valid"):
        return v.value
    return _nonneg_pair(v, where, "a number, H x W, `same` or `valid`", ", `same` or `valid`")


def _nonneg_pair(
    v: Value, where: str, expected: str = "a whole number or H x W", names: str = ""
) -> tuple:
    """A whole number or H x W, each at least 0 (paddings); `names` adds to the hint."""
    if v.kind == "dims" and len(v.value) == 2:
        h, w = v.value
    elif v.kind == "number" and isinstance(v.value, int):
        h = w = v.value
    else:
        hint = f"e.g. `1` or `0 x 2`{names}"
        raise fail("E004", v.span, f"{where} must be {expected}, not {_describe(v)}", hint)
    if min(h, w) < 0:
        raise fail("E006", v.span, f"{where} must not be negative, got {_describe(v)}")
    if max(h, w) > MAX_SIZE:
        raise fail("E006", v.span, f"{where} is too large; at most {MAX_SIZE}")
    return (h, w)


def _bool(v: Value, where: str) -> bool:
    if v.kind == "name" and v.value in ("true", "false"):
        return v.value == "true"
    raise fail("E004", v.span, f"{where} must be `true` or `false`, not {_describe(v)}")


def _choice(v: Value, choices: list[str], where: str) -> str:
    if v.kind == "name" and v.value in choices:
        return v.value
    hint = did_you_mean(str(v.value), choices) if v.kind == "name" else ""
    if not hint:
        hint = "expected one of: " + ", ".join(f"`{c}`" for c in choices)
    raise fail(
        "E004", v.span, f"{where} must be one of {', '.join(choices)}, not {_describe(v)}", hint
    )


def _names(v: Value, where: str) -> tuple[str, ...]:
    items = v.value if v.kind == "list" else (v,)
    out = []
    for item in items:
        if item.kind != "name":
            raise fail("E004", item.span, f"{where} takes names, not {_describe(item)}")
        out.append(item.value)
    return tuple(out)


def _numbers(v: Value, where: str, element) -> tuple:
    if v.kind != "list":
        raise fail("E004", v.span, f"{where} must be a list such as [1, 2, 3], not {_describe(v)}")
    return tuple(element(item, where) for item in v.value)


def init_value(v: Value, where: str) -> ir.BaseModel:
    """An initialiser written as a name (`zeros`) or a call (`normal(std=0.01)`)."""
    if v.kind not in ("name", "call") or v.value not in INITS:
        if v.kind in ("name", "call"):
            raise fail(
                "E004",
                v.span,
                f"{where}: unknown initialiser `{v.value}`",
                did_you_mean(v.value, INITS),
            )
        raise fail("E004", v.span, f"{where} must be an initialiser, not {_describe(v)}")
    values = bind(v.value, v.args, INITS[v.value], v.span)
    return build_init(v.value, values, v.span)


def build_init(name: str, values: dict, span: ir.Span):
    """The IR initialiser for a bound call."""
    if name == "zeros":
        return ir.Constant(value=0.0)
    if name == "ones":
        return ir.Constant(value=1.0)
    if name in ("normal", "trunc_normal") and values["std"] <= 0:
        raise fail("E006", span, f"`{name}` needs a positive std, got {values['std']}")
    if name == "trunc_normal":
        _check_truncation(values, span)
    if name == "uniform" and values["high"] <= values["low"]:
        raise fail("E004", span, "`uniform` needs low < high")
    cls = INIT_CLASSES[name]
    return validated(cls, values, span, name)


def _check_truncation(values: dict, span: ir.Span) -> None:
    """trunc_normal's bounds: low < high, within two std of the mean (torch warns past that)."""
    low, high, mean, std = values["low"], values["high"], values.get("mean", 0.0), values["std"]
    if high <= low:
        raise fail("E004", span, "`trunc_normal` needs low < high")
    if mean < low - 2 * std or mean > high + 2 * std:
        raise fail(
            "E004",
            span,
            f"`trunc_normal`: the mean {mean} is more than 2 std from [{low}, {high}]",
            "the bounds are absolute values (torch's a and b), not multiples of std",
        )


def _bias(v: Value, where: str):
    """`true`, `false`, or an initialiser (which implies `true`)."""
    if v.kind == "name" and v.value in ("true", "false"):
        return v.value == "true"
    if v.kind not in ("name", "call"):
        raise fail(
            "E004",
            v.span,
            f"{where} must be `true`, `false` or an initialiser, not {_describe(v)}",
            "e.g. `bias=false` or `bias=constant(1)`",
        )
    return init_value(v, where)


FIELD_SPELLING = {"weight_init": "weight", "bias_init": "bias", "from_": "from"}
# pydantic's bound errors -> the range a hint names
BOUNDS = {
    "greater_than": "above {gt:g}",
    "greater_than_equal": "of at least {ge:g}",
    "less_than": "below {lt:g}",
    "less_than_equal": "of at most {le:g}",
}


def validated(cls, values: dict, span: ir.Span, what: str, spans: dict | None = None):
    """Build a pydantic model; a validation error becomes E004 at the offending argument."""
    from pydantic import ValidationError

    try:
        return cls(**values)
    except ValidationError as exc:
        raise failures([_invalid(e, span, what, spans or {}) for e in exc.errors()]) from None


def field_errors(cls, values: dict, span: ir.Span, what: str, spans: dict) -> list[BindError]:
    """The validation errors of the arguments in `values` alone, as validated() reports them
    (for a call with other, already reported, bad arguments)."""
    from pydantic import ValidationError

    written = {FIELD_SPELLING.get(name, name) for name in values}
    try:
        cls(**values)
    except ValidationError as exc:
        return [
            _invalid(e, span, what, spans)
            for e in exc.errors()
            if e["loc"] and FIELD_SPELLING.get(str(e["loc"][0]), str(e["loc"][0])) in written
        ]
    return []


def _invalid(problem: dict, span: ir.Span, what: str, spans: dict) -> BindError:
    """E004 at the argument that one pydantic validation error is about, with the range a
    bound asks for as the hint."""
    loc = problem["loc"]
    field = FIELD_SPELLING.get(str(loc[0]), str(loc[0])) if loc else ""
    got = problem.get("input")
    shown = f", got {got}" if isinstance(got, (int, float)) else ""
    bound = BOUNDS.get(problem["type"])
    hint = f"use a value {bound.format(**problem['ctx'])}" if bound else ""
    message = f"`{field}` of `{what}`: {problem['msg'].lower()}{shown}"
    return fail("E004", spans.get(field, span), message, hint)


def _describe_fail(v: Value, where: str):
    raise fail("E004", v.span, f"{where} must be a name, not {_describe(v)}")


def _describe(v: Value) -> str:
    """How a written value reads in a message."""
    if v.kind == "tensor":
        return f"the tensor `{v.value.written}` (read its size: `{v.value.written}.channels`)"
    if v.kind == "dims":
        return "`" + " x ".join(str(d) for d in v.value) + "`"
    if v.kind == "list":
        return "a list"
    if v.kind == "call":
        return f"`{v.value}(...)`"
    return f"`{v.value}`"


INIT_CLASSES = {
    "normal": ir.Normal,
    "trunc_normal": ir.TruncNormal,
    "uniform": ir.Uniform,
    "constant": ir.Constant,
    "he_normal": ir.HeNormal,
    "he_uniform": ir.HeUniform,
    "glorot_normal": ir.GlorotNormal,
    "glorot_uniform": ir.GlorotUniform,
    "fan_in_uniform": ir.FanInUniform,
}

CONVERTERS = {
    "value": lambda v, w: v,
    "name": lambda v, w: v if v.kind == "name" else _describe_fail(v, w),
    "float": _number,
    "nonneg": _nonneg,
    "int": _int,
    "opt_int": _opt_int,
    "count": _count,
    "pair": _pair,
    "size": _size,
    "pad": _pad,
    "nonneg_pair": _nonneg_pair,
    "bool": _bool,
    "bias": _bias,
    "init": init_value,
    "names": _names,
    "ints": lambda v, w: _numbers(v, w, _count),
    "floats": lambda v, w: _numbers(v, w, _number),
}
