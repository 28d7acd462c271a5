"""Pairing two models' tensor layers by graph structure: colour refinement, then checked.

Both graphs are refined together (so colours compare across them): a layer's colour starts as
its signature (kind family, roles and shapes; or kind family alone) and becomes, round after
round, its colour with the sorted colours and offsets of its predecessors and successors,
until no class splits. Equal colours on both sides, one layer each, pair. Where a class holds
several layers per side, the refinement cannot tell them apart: the first of each side in
execution order get a colour of their own, and refinement runs again. The result must map one
graph onto the other exactly, flows and offsets included; anything else is refused.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from archdsl.weight_records import (
    INPUT,
    LayerGraph,
    Pairing,
    PairingError,
    TensorLayer,
    family,
    first_difference,
    tensor_keys,
)


def pair_by_structure(ours: LayerGraph, theirs: LayerGraph, leave_out: frozenset[str]) -> Pairing:
    """Pair the layers by structure; a left-out layer of ours takes its partner (found with
    kinds alone, shapes ignored) out of the pairing."""
    result = Pairing()
    if leave_out:
        partners = _match(ours, theirs, lambda layer: family(layer.kind))
        dropped = {partners[name] for name in leave_out}
        result.left_out = [k for x in theirs.layers if x.name in dropped for _, k, _ in x.tensors]
        ours, theirs = _without(ours, leave_out), _without(theirs, dropped)
    mine, other = _names(ours), _names(theirs)
    for a, b in _match(ours, theirs, lambda layer: layer.signature).items():
        result.layers[b] = a
        result.keys.update(tensor_keys(mine[a], other[b]))
    return result


def _names(graph: LayerGraph) -> dict[str, TensorLayer]:
    """The layers of a graph by name."""
    return {layer.name: layer for layer in graph.layers}


def _without(graph: LayerGraph, names: set[str] | frozenset[str]) -> LayerGraph:
    """The graph without some layers and the flows that touch them."""
    return LayerGraph(
        [x for x in graph.layers if x.name not in names],
        [f for f in graph.flows if f.source not in names and f.target not in names],
        graph.origin,
    )


class _Joint:
    """Both graphs as one, for refinement: nodes 0..len(ours) are ours (INPUT first)."""

    def __init__(self, ours: LayerGraph, theirs: LayerGraph, start: Callable):
        """Index both graphs' nodes and flows; colour every node by `start(layer)`."""
        self.sides = (ours, theirs)
        self.names = [INPUT, *(x.name for x in ours.in_order())]
        self.split = len(self.names)
        self.names += [INPUT, *(x.name for x in theirs.in_order())]
        self.preds = [[] for _ in self.names]
        self.succs = [[] for _ in self.names]
        for side, graph in enumerate(self.sides):
            index = self._index(side)
            for f in graph.flows:
                self.preds[index[f.target]].append((index[f.source], f.offset))
                self.succs[index[f.source]].append((index[f.target], f.offset))
        layers = {**_names(ours), **_names(theirs)}
        starts = [("input",) if n == INPUT else ("layer", start(layers[n])) for n in self.names]
        self.colours = _numbered(starts)

    def _index(self, side: int) -> dict[str, int]:
        """Name -> node number on one side."""
        span = range(self.split) if side == 0 else range(self.split, len(self.names))
        return {self.names[i]: i for i in span}

    def refine(self) -> None:
        """Split colour classes by neighbours' colours and offsets until none splits."""
        classes = len(set(self.colours))
        while True:
            c = self.colours
            keys = [
                (
                    c[i],
                    tuple(sorted((c[j], k) for j, k in self.preds[i])),
                    tuple(sorted((c[j], k) for j, k in self.succs[i])),
                )
                for i in range(len(c))
            ]
            self.colours = _numbered(keys)
            if len(set(self.colours)) == classes:
                return
            classes = len(set(self.colours))

    def classes(self) -> dict[int, tuple[list[int], list[int]]]:
        """Colour -> (our nodes, their nodes), each in execution order."""
        found: dict[int, tuple[list[int], list[int]]] = {}
        for i, colour in enumerate(self.colours):
            found.setdefault(colour, ([], []))[i >= self.split].append(i)
        return found


def _numbered(keys: list) -> list[int]:
    """Each key replaced by a number, equal keys by equal numbers."""
    table: dict = {}
    return [table.setdefault(key, len(table)) for key in keys]


def _match(ours: LayerGraph, theirs: LayerGraph, start: Callable) -> dict[str, str]:
    """{our layer: their layer}: a bijection that maps one graph onto the other, or
    PairingError."""
    if Counter(map(start, ours.layers)) != Counter(map(start, theirs.layers)):
        found = first_difference(ours, theirs) or "the kinds of the layers differ"
        raise PairingError(f"the models' layers differ: {found}")
    joint = _Joint(ours, theirs, start)
    joint.refine()
    chosen = 0  # pairs of layers paired by order, refinement unable to tell them apart
    while True:
        classes = joint.classes()
        _check_balanced(joint, classes, chosen)
        tied = [(a, b) for a, b in classes.values() if len(a) > 1]
        if not tied:
            break
        a, b = min(tied)  # the earliest layers of ours that refinement cannot tell apart
        joint.colours[a[0]] = joint.colours[b[0]] = len(joint.names) + chosen
        chosen += 1
        joint.refine()
    match = {joint.names[a[0]]: joint.names[b[0]] for a, b in joint.classes().values()}
    match.pop(INPUT)
    _check_isomorphic(ours, theirs, match)
    return match


def _check_balanced(joint: _Joint, classes: dict, chosen: int) -> None:
    """PairingError unless every colour has as many layers on both sides (after `chosen`
    pairs paired by order: the order did not tell them apart either)."""
    unbalanced = [(a, b) for a, b in classes.values() if len(a) != len(b)]
    if not unbalanced:
        return
    ours, theirs = joint.sides
    layers_only = {i for i, name in enumerate(joint.names) if name != INPUT}
    mine = min((i for a, _ in unbalanced for i in a if i in layers_only), default=None)
    other = min((i for _, b in unbalanced for i in b if i in layers_only), default=None)
    layers = {**_names(ours), **_names(theirs)}
    named = [
        f"{side.origin}'s {layers[joint.names[i]].describe()}"
        for side, i in ((theirs, other), (ours, mine))
        if i is not None
    ]
    why = (
        f"the layers cannot be paired with certainty: after pairing {chosen} that the "
        "structure does not tell apart in execution order, "
        if chosen
        else "the models' layers are connected differently: "
    )
    raise PairingError(
        f"{why}no partner in the same place of the other graph for "
        f"{' and '.join(named) or 'the input'}"
    )


def _check_isomorphic(ours: LayerGraph, theirs: LayerGraph, match: dict[str, str]) -> None:
    """PairingError unless the pairing maps every flow of ours to one of theirs and back."""
    rename = {INPUT: INPUT, **match}
    mapped = {(rename[f.source], rename[f.target], f.offset) for f in ours.flows}
    found = {(f.source, f.target, f.offset) for f in theirs.flows}
    if mapped != found:
        source, target, _ = min(mapped ^ found)
        raise PairingError(
            "the layers cannot be paired with certainty: the structure leaves a choice that "
            f"does not map one graph onto the other (first at {theirs.origin}'s {target}, "
            f"fed by {source})"
        )
