"""What an op is, declared once: its IR node, arguments, shape rule, tensors and MACs.

Every reader of op facts (lowering, shapes, counts, the weight layout, the backends' dispatch
tables, and later ONNX, the importer, diagrams and the language server) reads them from the
`OpSpec`s of `archdsl.ops.REGISTRY`; adding an op is one declaration in a family module of this
package plus one entry in each backend's table.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from archdsl.params import Param

Shape = tuple[int, ...]

# A shape's layout follows from its rank (the batch is implicit): what an op may receive.
LAYOUTS = {1: "vector", 2: "tokens", 3: "map"}
WRITTEN = {
    "vector": "a flat vector",
    "tokens": "an L x D token sequence",
    "map": "a C x H x W map",
    "ids": "token ids (an `input NAME: tokens L of V`)",
}
# how to get to a layout from another one, for E018's hint
CONVERSIONS = {
    ("map", "vector"): "add `flatten` before it",
    ("vector", "map"): "it needs a spatial input; move it before `flatten`",
    ("map", "tokens"): "add `to_tokens` before it (a C x H x W map -> H*W x C tokens)",
    ("tokens", "map"): "add `to_map(H, W)` before it (L x D tokens -> a D x H x W map)",
    ("tokens", "vector"): "add `token(0)` (the class token) or `mean_tokens` before it",
    ("vector", "tokens"): "it needs a token sequence; move it before `token` or `mean_tokens`",
}


class TokenIds(tuple):
    """The shape (L,) of an input of L integer token ids, each below `vocab`."""

    vocab: int

    def __new__(cls, length: int, vocab: int):
        ids = super().__new__(cls, (length,))
        ids.vocab = vocab
        return ids


class ShapeError(Exception):
    """An op cannot be applied to the shapes it receives: a diagnostic code, message, hint."""

    def __init__(self, code: str, message: str, hint: str = ""):
        super().__init__(message)
        self.code, self.message, self.hint = code, message, hint


class ArgumentError(Exception):
    """Arguments of an op that do not go together: a code, the argument to point at, a
    message and a hint (lowering turns it into a diagnostic at that argument)."""

    def __init__(self, code: str, argument: str, message: str, hint: str = ""):
        super().__init__(message)
        self.code, self.argument, self.message, self.hint = code, argument, message, hint


@dataclass(frozen=True)
class Out:
    """What a shape rule returns: the shape, how it was computed, and any warnings."""

    shape: Shape
    formula: str = ""
    warnings: tuple[tuple[str, str, str], ...] = ()


@dataclass(frozen=True)
class Tensor:
    """One tensor an op holds: its portable shape and whether an optimizer trains it."""

    shape: Shape
    trainable: bool = True

    @property
    def size(self) -> int:
        """Number of elements."""
        return math.prod(self.shape)


def layout(shape: Shape) -> str:
    """'map', 'tokens', 'vector' or 'ids' (or 'rank-N' for a shape no op takes)."""
    if isinstance(shape, TokenIds):
        return "ids"
    return LAYOUTS.get(len(shape), f"rank-{len(shape)}")


def fmt(shape: Shape) -> str:
    """A shape as the language writes it: 256 x 6 x 6."""
    return " x ".join(str(d) for d in shape)


def need(shape: Shape, wanted: str, what: str) -> None:
    """E018 unless `shape` has the layout `wanted`, with the conversion to use in the hint."""
    need_one_of(shape, (wanted,), what)


def need_one_of(shape: Shape, wanted: tuple[str, ...], what: str) -> None:
    """E018 unless `shape` has one of the layouts `wanted`; the hint names the conversion to
    the first of them that has one."""
    found = layout(shape)
    if found not in wanted:
        hints = [CONVERSIONS[(found, w)] for w in wanted if (found, w) in CONVERSIONS]
        hint = hints[0] if hints else f"it takes {' or '.join(WRITTEN[w] for w in wanted)}"
        written = " or ".join(WRITTEN[w] for w in wanted)
        raise ShapeError("E018", f"{what} needs {written}, got {fmt(shape)}", hint)


def features(shape: Shape) -> int:
    """The size a per-feature op acts on: a map's channels, a vector's features, a token's D."""
    return shape[-1] if layout(shape) == "tokens" else shape[0]


def no_tensors(op, inputs: list[Shape]) -> dict[str, Tensor]:
    """An op without tensors."""
    return {}


def no_macs(op, inputs: list[Shape], output: Shape) -> int:
    """An op whose multiply-accumulates are not counted (only conv and dense are)."""
    return 0


def as_written(values: dict) -> dict:
    """Arguments need no completing or cross-checking."""
    return values


@dataclass(frozen=True)
class OpSpec:
    """Everything the front end knows about one op."""

    name: str
    node: type  # the pydantic IR class (one class may serve several ops, e.g. activations)
    params: tuple[Param, ...]  # the signature, in positional order
    doc: str  # one line: what it computes
    shape: Callable[..., Out]  # (op, [input shapes]) -> Out; raises ShapeError
    tensors: Callable[..., dict[str, Tensor]] = no_tensors  # (op, [input shapes]) -> by name
    macs: Callable[..., int] = no_macs  # (op, [input shapes], output shape) -> MACs
    fans: Callable[..., tuple[int, int]] | None = None  # learned ops: (op, inputs) -> fans
    prepare: Callable[[dict], dict] = as_written  # completes arguments; raises ArgumentError
    merge: bool = False  # reads two or more named inputs (`concat(a, b)`) and starts a statement
    feature_wise: bool = False  # on a vector, every feature stays itself (orders pass through)
    window: bool = False  # slides a window over H x W (what last shrank a map, for W104)
    reads_ids: bool = False  # takes the integer ids of a token input (embedding)
    masked: bool = False  # skips padding tokens when a padding mask reaches it (masking.py)

    @property
    def learned(self) -> bool:
        """Whether the op has a weight (and maybe a bias) with initialisers."""
        return self.fans is not None
