"""The records weight pairing works on (see archdsl/weight_pairing.py for what they mean)."""

from __future__ import annotations

from dataclasses import dataclass, field

Shape = tuple[int, ...]
INPUT = "<input>"
# kinds that pair with each other, by the family they pair as
FAMILY = {"dense": "conv"}


class PairingError(ValueError):
    """The two models' tensors cannot be paired with certainty (a one-line message)."""


@dataclass(frozen=True)
class TensorLayer:
    """One layer holding tensors: its name, kind, (role, key, shape) tensors and order."""

    name: str
    kind: str
    tensors: tuple[tuple[str, str, Shape], ...]
    order: int

    @property
    def signature(self) -> tuple:
        """What must be equal for two layers to pair: kind family, roles and their shapes."""
        return (family(self.kind), tuple(sorted((r, stripped(s)) for r, _, s in self.tensors)))

    def describe(self) -> str:
        """`conv layer1.0.conv1 (weight 64 x 64 x 3 x 3, bias 64)`: kind, name, every tensor."""
        held = ", ".join(f"{role} {' x '.join(map(str, shape))}" for role, _, shape in self.tensors)
        return f"{self.kind} {self.name} ({held or 'no tensors'})"


@dataclass(frozen=True)
class Flow:
    """`source` (a layer's name or INPUT) feeds `target` at channel `offset`."""

    source: str
    target: str
    offset: int = 0


@dataclass
class LayerGraph:
    """One side of a pairing: its tensor layers and their flows (None: order only)."""

    layers: list[TensorLayer]
    flows: list[Flow] | None = None
    origin: str = "theirs"  # how messages name this side

    def in_order(self) -> list[TensorLayer]:
        """The layers in execution (or registration) order."""
        return sorted(self.layers, key=lambda layer: layer.order)


@dataclass
class Pairing:
    """The result: their tensor key -> our tensor key, and what was left out."""

    keys: dict[str, str] = field(default_factory=dict)
    layers: dict[str, str] = field(default_factory=dict)  # their layer -> our layer
    left_out: list[str] = field(default_factory=list)  # their keys whose layer we left out
    by_order: bool = False  # paired by order and shape alone (no flows)


def family(kind: str) -> str:
    """The kind two layers must share to pair (`dense` pairs with `conv`)."""
    return FAMILY.get(kind, kind)


def stripped(shape: Shape) -> Shape:
    """The shape without trailing dimensions of size 1: (C, 1, 1) -> (C,)."""
    shape = tuple(shape)
    while shape and shape[-1] == 1:
        shape = shape[:-1]
    return shape


def tensor_keys(mine: TensorLayer, other: TensorLayer) -> dict[str, str]:
    """{other's key: mine's key} for two paired layers, role by role."""
    roles = {role: key for role, key, _ in mine.tensors}
    return {key: roles[role] for role, key, _ in other.tensors}


def first_difference(ours: LayerGraph, theirs: LayerGraph) -> str | None:
    """A message naming the first layers, in order, whose kinds and shapes do not pair; None
    when both sides have the same kinds and shapes in the same order."""
    mine, other = ours.in_order(), theirs.in_order()
    for a, b in zip(mine, other, strict=False):
        if a.signature != b.signature:
            return (
                f"in execution order, {theirs.origin}'s {b.describe()} meets "
                f"{ours.origin}'s {a.describe()}"
            )
    if len(mine) > len(other):
        return f"{ours.origin}'s {mine[len(other)].describe()} has no partner in {theirs.origin}"
    if len(other) > len(mine):
        return f"{theirs.origin}'s {other[len(mine)].describe()} has no partner in {ours.origin}"
    return None
