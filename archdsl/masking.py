"""Which ops skip padding: the padding mask of a token input, followed through the graph.

An `embedding(V, D, padding=P)` reading token ids `text` makes real_tokens(text, P) the mask
of its output. The mask follows a sequence through the ops known to keep its L positions in
place (L x D in, L x D' out: the feature-wise ops such as layernorm, the activations and
dropout, and dense, attention, position_embedding, lstm or gru with sequences=true, and the
merges of sequences that carry the same mask) and ends at any other op. A `masked` op (lstm,
gru, attention, mean_tokens) whose input carries a mask receives it; elsewhere every
position counts.
"""

from __future__ import annotations

from archdsl.ops import REGISTRY
from archdsl.shapes import Report

# ops that keep every token at its position, besides the feature-wise ones
POSITIONAL = frozenset({"dense", "attention", "position_embedding", "lstm", "gru", "add", "mul"})


def masks(report: Report) -> dict[str, tuple[str, int]]:
    """{layer name: (token input, padding id)} for each masked op that receives a mask."""
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
    return received


def masked_blocks(report: Report) -> set[str]:
    """The blocks a call of which holds a layer that receives a padding mask: generated code
    runs them statement by statement, where forward hands the mask over."""
    received = masks(report)
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
    positional = REGISTRY[op.op].feature_wise or op.op in POSITIONAL
    return mask if keeps and positional else None
