"""Python expressions as small trees and their one-line text, shared by both emitters.

Each backend's layout module lays the trees out over lines the way `ruff format` leaves them;
this module holds what they have in common: the tree nodes and the literals as ruff spells them.
"""

from __future__ import annotations

import keyword
import math
from dataclasses import dataclass

WIDTH = 88  # ruff's default line length
INDENT = 4
# what every model.py defines at its top level (backends/CONTRACT.md)
CONTRACT_NAMES = {
    "MODEL_NAME",
    "SPEC",
    "INPUT_SHAPE",
    "OUTPUT_SHAPE",
    "NUM_CLASSES",
    "INPUT_VOCAB",
    "TRAIN",
    "build_model",
    "predict",
    "build_optimizer",
    "build_scheduler",
    "load_weights",
    "save_weights",
}


@dataclass(frozen=True)
class Call:
    """`func(args)`; `func` may itself be a Call, as in `Layer(...)(x)`."""

    func: Code
    args: tuple[Code, ...] = ()


@dataclass(frozen=True)
class Seq:
    """A tuple, list or dict display; `brackets` is "()", "[]" or "{}"."""

    brackets: str
    items: tuple[Code, ...]


@dataclass(frozen=True)
class Pair:
    """`key=value` in a call, or `key: value` in a dict (sep=": ")."""

    key: str
    value: Code
    sep: str = "="


@dataclass(frozen=True)
class Plus:
    """`a + b + ...` of names (or `a * b * ...` with op="*")."""

    terms: tuple[str, ...]
    op: str = "+"


Code = str | Call | Seq | Pair | Plus


def num(x: float | int | bool | None) -> str:
    """A Python literal of a number, bool or None that round-trips, as ruff format writes it."""
    if isinstance(x, float) and not math.isfinite(x):
        return f'float("{x}")'
    return repr(x).replace("e+", "e")


def string(s: str) -> str:
    """A string literal in the quotes ruff format picks: double, unless single escapes fewer."""
    quote = "'" if s.count('"') > s.count("'") else '"'
    body = "".join("\\" + c if c == quote else c if c in "'\"" else repr(c)[1:-1] for c in s)
    return quote + body + quote


def literal(value) -> Code:
    """Plain data (dicts, lists, tuples, strings, numbers) as a tree; sequences become lists."""
    if isinstance(value, dict):
        return Seq("{}", tuple(Pair(string(k), literal(v), ": ") for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return Seq("[]", tuple(literal(v) for v in value))
    if isinstance(value, str):
        return string(value)
    return num(value)


def tup(values) -> Seq:
    """A tuple display of numbers."""
    return Seq("()", tuple(num(v) for v in values))


def flat(code: Code) -> str:
    """The tree on one line."""
    if isinstance(code, str):
        return code
    if isinstance(code, Pair):
        return code.key + code.sep + flat(code.value)
    if isinstance(code, Plus):
        return f" {code.op} ".join(code.terms)
    if isinstance(code, Call):
        return f"{flat(code.func)}({', '.join(flat(a) for a in code.args)})"
    inner = ", ".join(flat(i) for i in code.items)
    if code.brackets == "()" and len(code.items) == 1:
        inner += ","
    return code.brackets[0] + inner + code.brackets[1]


# the keys of model.py's TRAIN, in backends/CONTRACT.md's order
TRAIN_ORDER = (
    "batch",
    "epochs",
    "loss",
    "optimizer",
    "schedule",
    "augment",
    "clip_grad_norm",
    "ema",
)


def vocab_line(graph) -> list[str]:
    """`INPUT_VOCAB = V` for a model whose input is `tokens L of V` (the text trainers'
    sign), else nothing."""
    vocab = graph.inputs[0].vocab
    return [] if vocab is None else [f"INPUT_VOCAB = {vocab}"]


def train_data(train) -> dict:
    """The recipe (an ir.Train) as plain data in the contract's key order; `from_` is "from".
    The fine-tuning groups appear only in a spec that has them: "freeze" a list of statement
    prefixes, "lr_scale" {prefix: factor}."""
    data = train.model_dump(by_alias=True, exclude={"span"})
    out = {key: data[key] for key in TRAIN_ORDER}
    if train.freeze:
        out["freeze"] = list(train.freeze)
    if train.lr_scale:
        out["lr_scale"] = dict(train.lr_scale)
    return out


def variable_names(names, reserved: set[str]) -> dict[str, str]:
    """A distinct Python variable per name, in order: a block call's dotted name joined by
    underscores (`layer2.0.conv1` -> `layer2_0_conv1`), `_` appended while the result is taken
    by an earlier name or reserved."""
    taken = set(reserved)
    out = {}
    for name in names:
        var = name.replace(".", "_")
        if not var.isidentifier() or not var.isascii() or keyword.iskeyword(var):
            raise ValueError(f"{name!r} is not a safe Python identifier")
        while var in taken:
            var += "_"
        taken.add(var)
        out[name] = var
    return out
