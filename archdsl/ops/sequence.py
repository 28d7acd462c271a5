"""Ops on sequences from data: token embeddings and the recurrent layers (LSTM, GRU).

An embedding reads the integer ids of a `tokens L of V` input and gives an L x D sequence; with
`padding=P` the id P marks padding, and the recurrent ops (and the other `masked` ops) that the
padding mask reaches skip those positions (archdsl/masking.py).
"""

from __future__ import annotations

from typing import Literal

from pydantic import NonNegativeInt, PositiveInt

from archdsl.ir_types import Frozen, Span
from archdsl.ops.spec import ArgumentError, OpSpec, Out, Shape, ShapeError, Tensor, need
from archdsl.params import sig

GATES = {"lstm": 4, "gru": 3}  # PyTorch's gate blocks: LSTM i, f, g, o; GRU r, z, n


class Embedding(Frozen):
    """A table of `vocab` learned vectors of `dim` values, read by token id; row `padding`
    (if given) starts at zero and is never trained (torch.nn.Embedding's padding_idx)."""

    op: Literal["embedding"] = "embedding"
    span: Span
    vocab: PositiveInt
    dim: PositiveInt
    padding: NonNegativeInt | None = None


class Recurrent(Frozen):
    """A stack of `layers` LSTM or GRU layers (PyTorch's equations and tensors), each one or
    two directions; the whole output sequence, or the last state of the top layer."""

    op: Literal["lstm", "gru"]
    span: Span
    units: PositiveInt
    layers: PositiveInt = 1
    bidirectional: bool = False
    sequences: bool = False
    bias: bool = True


def _embedding_args(values: dict) -> dict:
    """The padding id must be one of the table's rows."""
    padding, vocab = values.get("padding"), values["vocab"]
    if padding is not None and not 0 <= padding < vocab:
        raise ArgumentError(
            "E004",
            "padding",
            f"embedding padding id {padding} is not a row of a {vocab}-row table",
            f"padding ids are from 0 to {vocab - 1}; the text tokenizer pads with 0",
        )
    return values


def _embedding_shape(op: Embedding, inputs: list[Shape]) -> Out:
    """L token ids -> L x dim; the table must have a row for every id the input may hold."""
    (ids,) = inputs
    need(ids, "ids", "embedding")
    if op.vocab < ids.vocab:
        raise ShapeError(
            "E018",
            f"embedding({op.vocab}, {op.dim}) has {op.vocab} rows, but the ids of its input "
            f"go up to {ids.vocab - 1}",
            f"write `embedding({ids.vocab}, {op.dim})`",
        )
    return Out((ids[0], op.dim), f"{ids[0]} ids -> {ids[0]} x {op.dim}")


def _embedding_tensors(op: Embedding, inputs: list[Shape]) -> dict[str, Tensor]:
    """weight (vocab, dim), as torch.nn.Embedding's."""
    return {"weight": Tensor((op.vocab, op.dim))}


def directions(op: Recurrent) -> tuple[str, ...]:
    """The suffixes of PyTorch's tensor names per direction: '' and, if bidirectional,
    '_reverse'."""
    return ("", "_reverse") if op.bidirectional else ("",)


def layer_inputs(op: Recurrent, features: int) -> list[int]:
    """The input width of each layer: the sequence's features, then the layer below's output."""
    return [features] + [op.units * len(directions(op))] * (op.layers - 1)


def _recurrent_shape(op: Recurrent, inputs: list[Shape]) -> Out:
    """L x D -> L x units*directions (sequences=true) or units*directions (the last state)."""
    (shape,) = inputs
    need(shape, "tokens", op.op)
    width = op.units * len(directions(op))
    out = (shape[0], width) if op.sequences else (width,)
    kind = "sequence" if op.sequences else "last state"
    return Out(out, f"{shape[1]} -> {width} x {op.layers} layer(s), {kind}")


def _recurrent_tensors(op: Recurrent, inputs: list[Shape]) -> dict[str, Tensor]:
    """PyTorch's nn.LSTM / nn.GRU state_dict: per layer k and direction, weight_ih_lk
    (gates*units, in), weight_hh_lk (gates*units, units), bias_ih_lk and bias_hh_lk."""
    rows = GATES[op.op] * op.units
    held = {}
    for k, features in enumerate(layer_inputs(op, inputs[0][1])):
        for suffix in directions(op):
            held[f"weight_ih_l{k}{suffix}"] = Tensor((rows, features))
            held[f"weight_hh_l{k}{suffix}"] = Tensor((rows, op.units))
            if op.bias:
                held[f"bias_ih_l{k}{suffix}"] = Tensor((rows,))
                held[f"bias_hh_l{k}{suffix}"] = Tensor((rows,))
    return held


def _recurrent_macs(op: Recurrent, inputs: list[Shape], output: Shape) -> int:
    """Every weight once per position (input and recurrent matrices; gate products excluded)."""
    weights = _recurrent_tensors(op, inputs)
    per_step = sum(t.size for name, t in weights.items() if name.startswith("weight"))
    return inputs[0][0] * per_step


def _recurrent(name: str, doc: str) -> OpSpec:
    """The OpSpec of lstm or gru."""
    return OpSpec(
        name,
        Recurrent,
        sig("units:count!", "layers:count", "bidirectional:bool", "sequences:bool", "bias:bool"),
        doc,
        _recurrent_shape,
        tensors=_recurrent_tensors,
        macs=_recurrent_macs,
        masked=True,
    )


SPECS = (
    OpSpec(
        "embedding",
        Embedding,
        sig("vocab:count!", "dim:count!", "padding:opt_int"),
        "a learned dim-vector per token id (N(0, 1) as torch's; row `padding` zero, untrained)",
        _embedding_shape,
        tensors=_embedding_tensors,
        prepare=_embedding_args,
        reads_ids=True,
    ),
    _recurrent(
        "lstm", "LSTM layers (PyTorch's gates i, f, g, o): the output sequence or last state"
    ),
    _recurrent("gru", "GRU layers (PyTorch's gates r, z, n): the output sequence or last state"),
)
