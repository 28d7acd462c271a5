"""Which ops skip padding: the padding mask of a token input, followed through the graph.

An `embedding(V, D, padding=P)` reading token ids `text` makes `text != P` the mask of its
output. The mask follows a sequence through every op that keeps its L positions in place (an
L x D in, L x D' out: dense, layernorm, activations, attention, lstm with sequences=true, and
merges of sequences that carry the same mask) and ends at any other op. A `masked` op (lstm,
gru, ...) whose input carries a mask receives it; elsewhere every position counts.
"""

from __future__ import annotations

from archdsl.ops import REGISTRY
from archdsl.shapes import Report

# ops that move positions, so a mask no longer lines up with them
REORDERING = frozenset({"reshape", "permute"})


def masks(report: Report) -> tuple[dict[str, tuple[str, int]], dict[str, tuple[str, int]]]:
    """({layer name: (input, padding id)} for each masked op that receives a mask,
    {statement: (input, padding id)} for each statement whose output carries one)."""
    carried: dict[str, tuple[str, int] | None] = {i.name: None for i in report.graph.inputs}
    layers = report.by_statement()
    received: dict[str, tuple[str, int]] = {}
    for stmt in report.order:
        if stmt.name not in layers:
            continue
        sources = {carried.get(n) for n in stmt.inputs}
        mask = sources.pop() if len(sources) == 1 else None
        for op, layer in zip(stmt.ops, layers[stmt.name], strict=False):
            if REGISTRY[op.op].masked and mask is not None:
                received[layer.name] = mask
            mask = _after(op, layer, stmt.inputs[0], mask)
        carried[stmt.name] = mask
    return received, {name: m for name, m in carried.items() if m is not None}


def masked_blocks(report: Report) -> set[str]:
    """The blocks a call of which holds a layer that receives a padding mask: generated code
    runs them statement by statement, where forward hands the mask over."""
    received = masks(report)[0]
    return {
        call.block
        for call in report.graph.calls
        if any(name.startswith(f"{call.path}.") for name in received)
    }


def _after(op, layer, source: str, mask: tuple[str, int] | None) -> tuple[str, int] | None:
    """The mask an op's output carries."""
    if op.op == "embedding":
        return None if op.padding is None else (source, op.padding)
    shape_in, shape_out = layer.input_shape, layer.output_shape
    keeps = len(shape_in) == len(shape_out) == 2 and shape_in[0] == shape_out[0]
    return mask if keeps and op.op not in REORDERING else None
