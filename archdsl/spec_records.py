"""A spec's tensor layers and data flow as weight-pairing records (archdsl/weight_pairing.py).

Read off the checked report alone: no framework, no NumPy.
"""

from __future__ import annotations

from dataclasses import replace

from archdsl.shapes import Report, tensors
from archdsl.weight_records import INPUT, Flow, LayerGraph, TensorLayer

# what reaches an op: {(source layer or INPUT, channel offset)}
Sources = frozenset[tuple[str, int]]


def spec_graph(report: Report, origin: str = "the spec") -> LayerGraph:
    """The built layers that hold tensors and the flows between them; a layer's order is
    that of its statement as written (a valid execution order, the one a reader follows)."""
    placed: list[tuple[int, int, TensorLayer]] = []  # (statement as written, op, layer)
    flows: set[Flow] = set()
    reaching: dict[str, Sources] = {i.name: frozenset({(INPUT, 0)}) for i in report.graph.inputs}
    by_statement = report.by_statement()
    written = {stmt.name: i for i, stmt in enumerate(report.graph.statements)}
    for stmt in report.order:
        chain = by_statement.get(stmt.name, [])
        if not chain or not chain[0].built:
            continue
        sources = _merged(stmt, chain[0], reaching)
        for op, layer in zip(stmt.ops, chain, strict=True):
            held = tensors(op, list(layer.input_shapes))
            if held:
                flows.update(Flow(s, layer.name, k) for s, k in sources)
                roles = tuple((r, f"{layer.name}.{r}", t.shape) for r, t in held.items())
                placed.append(
                    (written[stmt.name], len(placed), TensorLayer(layer.name, op.op, roles, 0))
                )
                sources = frozenset({(layer.name, 0)})
        reaching[stmt.name] = sources
    placed.sort(key=lambda found: found[:2])
    numbered = [replace(layer, order=rank) for rank, (_, _, layer) in enumerate(placed)]
    return LayerGraph(numbered, sorted(flows, key=_flow_key), origin)


def _merged(stmt, first, reaching: dict[str, Sources]) -> Sources:
    """What reaches a statement's first op: a concat shifts each input by the channels of the
    inputs before it; every other op takes the union of its inputs."""
    if stmt.ops[0].op != "concat":
        return frozenset().union(*(reaching[name] for name in stmt.inputs))
    merged, offset = set(), 0
    for name, shape in zip(stmt.inputs, first.input_shapes, strict=True):
        merged.update((s, k + offset) for s, k in reaching[name])
        offset += shape[0]
    return frozenset(merged)


def _flow_key(flow: Flow) -> tuple:
    """A flow's sort key (the offsets are numbers, the names text)."""
    return (flow.source, flow.target, flow.offset)
