"""Ops that select or reorder channels without weights: chunk and channel_shuffle."""

from __future__ import annotations

from typing import Literal

from pydantic import NonNegativeInt, PositiveInt

from archdsl.ir_types import Frozen, Span
from archdsl.ops.spec import ArgumentError, OpSpec, Out, Shape, ShapeError, need, need_one_of
from archdsl.params import sig


class Chunk(Frozen):
    """The `part`-th of `chunks` equal slices of the channels (features of a vector)."""

    op: Literal["chunk"] = "chunk"
    span: Span
    chunks: PositiveInt
    part: NonNegativeInt


class ChannelShuffle(Frozen):
    """torchvision's channel_shuffle: channel g * (C / groups) + i moves to i * groups + g."""

    op: Literal["channel_shuffle"] = "channel_shuffle"
    span: Span
    groups: PositiveInt


def divisors(n: int) -> list[int]:
    """Every divisor of n, ascending."""
    return [d for d in range(1, n + 1) if n % d == 0]


def _split(channels: int, parts: int, what: str) -> int:
    """channels / parts, or E008 when the channels do not split evenly."""
    if channels % parts:
        raise ShapeError(
            "E008",
            f"{what}: {channels} channels do not split into {parts} equal parts",
            f"use a divisor of {channels}: one of {divisors(channels)[-6:]}",
        )
    return channels // parts


def _part_in_range(values: dict) -> dict:
    """`part` counts from 0 to chunks - 1."""
    chunks, part = values["chunks"], values["part"]
    if not 0 <= part < chunks:
        raise ArgumentError(
            "E004",
            "part",
            f"`part` of `chunk({chunks})` is {part}: it counts from 0 to {chunks - 1}",
            f"write e.g. `chunk({chunks}, part={chunks - 1})` for the last one",
        )
    return values


def _chunk_shape(op: Chunk, inputs: list[Shape]) -> Out:
    """C x H x W -> C / chunks x H x W (channels part * C / chunks onwards)."""
    (shape,) = inputs
    need_one_of(shape, ("map", "vector"), "chunk")
    width = _split(shape[0], op.chunks, f"chunk({op.chunks})")
    first = op.part * width
    return Out((width, *shape[1:]), f"channels {first}..{first + width - 1} of {shape[0]}")


def _shuffle_shape(op: ChannelShuffle, inputs: list[Shape]) -> Out:
    """The shape is kept; the groups must divide the channels."""
    (shape,) = inputs
    need(shape, "map", "channel_shuffle")
    per_group = _split(shape[0], op.groups, f"channel_shuffle({op.groups})")
    return Out(shape, f"{op.groups} groups of {per_group} interleaved")


SPECS = (
    OpSpec(
        "chunk",
        Chunk,
        sig("chunks:count!", "part:int!"),
        "the part-th (from 0) of `chunks` equal slices of the channels",
        _chunk_shape,
        prepare=_part_in_range,
    ),
    OpSpec(
        "channel_shuffle",
        ChannelShuffle,
        sig("groups:count!"),
        "interleaves `groups` equal channel groups (ShuffleNet's channel shuffle)",
        _shuffle_shape,
    ),
)
