"""A block's condition as Python source, for generated code that tests it when a call runs.

The source names what it reads as `{name}` placeholders (`{stride} == 1 and {in.channels} ==
{out}`): a block parameter, `index`, `position`, `positions`, `in.channels`, `in.height` or
`in.width` (which no parameter's name can be); `fill` puts the generated code's names in. A condition translates only where Python computes exactly what
archdsl's evaluation (expressions.py) does: an equality between a `true`/`false` and a number
(never equal in archdsl, sometimes in Python) or an operand whose kind is not known does not.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from archdsl.blocks import BLOCK_INPUT
from archdsl.expressions import ARITHMETIC, COMPARISONS, NUMBER_FUNCTIONS, SHAPE_ATTRIBUTES
from archdsl.syntax import Value

# what a parameter of each declared kind holds, as a translation sees it
KIND_OF_PARAM = {"int": "number", "float": "number", "bool": "bool", "size": "size", "name": "name"}


@dataclass(frozen=True)
class Condition:
    """A condition's Python source with `{name}` placeholders, and the names it reads."""

    source: str
    reads: tuple[str, ...]


class Untranslatable(Exception):
    """Python would not compute this condition as archdsl does (or cannot spell it)."""


# Python's binding strength of each node (higher binds tighter); an operand weaker than its
# place needs parentheses. Comparisons never take a comparison unparenthesised: Python chains them.
CONDITIONAL, OR, AND, NOT, COMPARE, SUM, PRODUCT, UNARY, ATOM = range(9)
LEVELS = {"conditional": CONDITIONAL, "or": OR, "and": AND, "not": NOT, "compare": COMPARE}


def python_condition(v: Value, kinds: Mapping[str, str]) -> Condition | None:
    """`v` in Python, or None; `kinds` gives each readable name's kind (KIND_OF_PARAM's values)."""
    reads: list[str] = []
    try:
        source, kind, _ = _translate(v, kinds, reads)
    except Untranslatable:
        return None
    return Condition(source, tuple(dict.fromkeys(reads))) if kind == "bool" else None


def _translate(v: Value, kinds: Mapping[str, str], reads: list[str]) -> tuple[str, str, int]:
    """(Python source, kind, binding strength) of one expression node."""
    if v.kind == "number" and not isinstance(v.value, bool):
        return repr(v.value), "number", ATOM if v.value >= 0 else UNARY
    if v.kind == "name":
        if v.value in ("true", "false"):
            return ("True" if v.value == "true" else "False"), "bool", ATOM
        if v.value in kinds:
            reads.append(v.value)
            return "{" + v.value + "}", kinds[v.value], ATOM
        raise Untranslatable(v.value)
    if v.kind == "attribute" and v.value[0] == BLOCK_INPUT and v.value[1] in SHAPE_ATTRIBUTES:
        reads.append(f"{BLOCK_INPUT}.{v.value[1]}")
        return "{" + f"{BLOCK_INPUT}.{v.value[1]}" + "}", "number", ATOM
    if v.kind == "not":
        return f"not {_operand(v.value[0], kinds, reads, 'bool', NOT)}", "bool", NOT
    if v.kind in ("and", "or"):
        level = LEVELS[v.kind]
        left = _operand(v.value[0], kinds, reads, "bool", level)
        right = _operand(v.value[1], kinds, reads, "bool", level + 1)
        return f"{left} {v.kind} {right}", "bool", level
    if v.kind == "negate":
        sign, operand = v.value
        return f"{sign}{_operand(operand, kinds, reads, 'number', UNARY)}", "number", UNARY
    if v.kind == "conditional":
        then, cond, otherwise = v.value
        a, kind = _placed(then, kinds, reads, OR)
        b, other = _placed(otherwise, kinds, reads, CONDITIONAL)
        if kind != other:
            raise Untranslatable("branches of different kinds")
        test = _operand(cond, kinds, reads, "bool", OR)
        return f"{a} if {test} else {b}", kind, CONDITIONAL
    if v.kind == "call" and v.value in NUMBER_FUNCTIONS and v.args:
        args = [
            _operand(a.value, kinds, reads, "number", CONDITIONAL) for a in v.args if a.key is None
        ]
        return f"{v.value}({', '.join(args)})", "number", ATOM
    if v.kind in ("binary", "compare"):
        return _binary(v, kinds, reads)
    raise Untranslatable(v.kind)


def fill(source: str, names: Mapping[str, str]) -> str:
    """A translated condition with each `{name}` replaced by how the code reads it."""
    return re.sub(r"\{([^{}]+)\}", lambda m: names[m[1]], source)


def _binary(v: Value, kinds: Mapping[str, str], reads: list[str]) -> tuple[str, str, int]:
    """Arithmetic on numbers, or a comparison of operands of one kind."""
    op, left, right = v.value
    if v.kind == "binary" and op in ARITHMETIC:
        level = SUM if op in "+-" else PRODUCT
        a = _operand(left, kinds, reads, "number", level)
        b = _operand(right, kinds, reads, "number", level + 1)
        return f"{a} {op} {b}", "number", level
    if op not in COMPARISONS:
        raise Untranslatable(op)
    a, kind = _placed(left, kinds, reads, COMPARE + 1)
    b, other = _placed(right, kinds, reads, COMPARE + 1)
    if kind != other or op not in ("==", "!=") and kind != "number":
        raise Untranslatable("a comparison of different kinds")
    return f"{a} {op} {b}", "bool", COMPARE


def _operand(v: Value, kinds: Mapping[str, str], reads: list[str], kind: str, least: int) -> str:
    """An operand that must be of `kind`, placed where it must bind at least as `least`."""
    source, found = _placed(v, kinds, reads, least)
    if found != kind:
        raise Untranslatable(f"{found} where {kind} is needed")
    return source


def _placed(v: Value, kinds: Mapping[str, str], reads: list[str], least: int) -> tuple[str, str]:
    """(source, kind), in parentheses where it binds more loosely than `least`."""
    source, kind, level = _translate(v, kinds, reads)
    return (source if level >= least else f"({source})"), kind
