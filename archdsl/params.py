"""Argument lists: one `Param` per argument, written compactly as 'name:kind[!]'."""

from __future__ import annotations

from dataclasses import dataclass

# kinds: count (positive int), pair (positive int or H x W), size (the same, zeros allowed),
# nonneg_pair (int or H x W, zeros allowed, no `same`), pad (int, H x W, same, valid), float,
# nonneg, bool, bias (bool or initialiser), init, choice:a|b, names, ints, floats, opt_int


@dataclass(frozen=True)
class Param:
    """One argument: its name, the kind of value it takes, whether it must be given."""

    name: str
    kind: str
    required: bool = False


def param(spec: str) -> Param:
    """'name:kind' or 'name:kind!' (required) -> Param."""
    name, kind = spec.split(":", 1)
    return Param(name, kind.rstrip("!"), kind.endswith("!"))


def sig(*specs: str) -> tuple[Param, ...]:
    """A signature, in positional order, from 'name:kind[!]' strings."""
    return tuple(param(s) for s in specs)
