"""Token sequences (L x D, batch implicit): conversions to and from maps, selecting and pooling
tokens, and the learned tensors a vision transformer adds to its sequence (a class token, a
position embedding)."""

from __future__ import annotations

from typing import Literal

from pydantic import NonNegativeInt, PositiveFloat, PositiveInt

from archdsl.ir_types import Frozen, Span
from archdsl.ops.spec import OpSpec, Out, Shape, ShapeError, Tensor, fmt, need
from archdsl.params import sig


class ToTokens(Frozen):
    """A C x H x W map as H*W tokens of C features, row by row (torchvision's ViT order)."""

    op: Literal["to_tokens"] = "to_tokens"
    span: Span


class ToMap(Frozen):
    """L = H*W tokens of D features as a D x H x W map (the inverse of to_tokens)."""

    op: Literal["to_map"] = "to_map"
    span: Span
    height: PositiveInt
    width: PositiveInt


class Token(Frozen):
    """One token of the sequence (from 0) as a vector of its D features."""

    op: Literal["token"] = "token"
    span: Span
    index: NonNegativeInt


class MeanTokens(Frozen):
    """The mean of all tokens: a vector of D features."""

    op: Literal["mean_tokens"] = "mean_tokens"
    span: Span


class ClassToken(Frozen):
    """A learned token (initialised to zeros) put before the sequence: L -> L + 1."""

    op: Literal["class_token"] = "class_token"
    span: Span


class PositionEmbedding(Frozen):
    """A learned L x D tensor added to the sequence, initialised N(0, std^2)."""

    op: Literal["position_embedding"] = "position_embedding"
    span: Span
    std: PositiveFloat = 0.02


def _to_tokens_shape(op: ToTokens, inputs: list[Shape]) -> Out:
    """C x H x W -> H*W x C."""
    (shape,) = inputs
    need(shape, "map", "to_tokens")
    c, h, w = shape
    return Out((h * w, c), f"{h} * {w} = {h * w} tokens of {c}")


def _to_map_shape(op: ToMap, inputs: list[Shape]) -> Out:
    """L x D -> D x H x W, with L = H * W checked."""
    (shape,) = inputs
    need(shape, "tokens", "to_map")
    length, dim = shape
    if op.height * op.width != length:
        raise ShapeError(
            "E013",
            f"to_map({op.height}, {op.width}) needs {op.height * op.width} tokens, got {length}",
            "height * width must equal the number of tokens (drop a class token with a "
            "statement that reads the map's tokens before it)",
        )
    return Out((dim, op.height, op.width), f"{length} tokens = {op.height} x {op.width}")


def _token_shape(op: Token, inputs: list[Shape]) -> Out:
    """L x D -> D (token `index`, which must exist)."""
    (shape,) = inputs
    need(shape, "tokens", "token")
    if op.index >= shape[0]:
        raise ShapeError(
            "E013",
            f"token({op.index}) selects past the {shape[0]} tokens of {fmt(shape)}",
            f"tokens are numbered from 0 to {shape[0] - 1}",
        )
    return Out((shape[1],), f"token {op.index} of {shape[0]}")


def _mean_tokens_shape(op: MeanTokens, inputs: list[Shape]) -> Out:
    """L x D -> D."""
    (shape,) = inputs
    need(shape, "tokens", "mean_tokens")
    return Out((shape[1],), f"mean over {shape[0]} tokens")


def _class_token_shape(op: ClassToken, inputs: list[Shape]) -> Out:
    """L x D -> L + 1 x D."""
    (shape,) = inputs
    need(shape, "tokens", "class_token")
    return Out((shape[0] + 1, shape[1]), f"1 + {shape[0]} tokens")


def _embedding_shape(op: PositionEmbedding, inputs: list[Shape]) -> Out:
    """Tokens keep their shape."""
    (shape,) = inputs
    need(shape, "tokens", "position_embedding")
    return Out(shape)


def _class_token_tensors(op: ClassToken, inputs: list[Shape]) -> dict[str, Tensor]:
    """token (1, 1, D): torchvision's class_token layout."""
    return {"token": Tensor((1, 1, inputs[0][1]))}


def _embedding_tensors(op: PositionEmbedding, inputs: list[Shape]) -> dict[str, Tensor]:
    """embedding (1, L, D): torchvision's encoder.pos_embedding layout."""
    return {"embedding": Tensor((1, *inputs[0]))}


SPECS = (
    OpSpec(
        "to_tokens",
        ToTokens,
        (),
        "a C x H x W map as H*W tokens of C features, row by row (torchvision's ViT order)",
        _to_tokens_shape,
    ),
    OpSpec(
        "to_map",
        ToMap,
        sig("height:count!", "width:count!"),
        "H*W tokens of D features as a D x H x W map (the inverse of to_tokens)",
        _to_map_shape,
    ),
    OpSpec(
        "token",
        Token,
        sig("index:int!"),
        "token `index` (from 0) of the sequence as a vector of its D features",
        _token_shape,
    ),
    OpSpec(
        "mean_tokens",
        MeanTokens,
        (),
        "the mean of the tokens (of the real ones, given a padding mask): a vector of D features",
        _mean_tokens_shape,
        masked=True,
    ),
    OpSpec(
        "class_token",
        ClassToken,
        (),
        "a learned token (zeros at first) put before the sequence: L x D -> L+1 x D",
        _class_token_shape,
        tensors=_class_token_tensors,
    ),
    OpSpec(
        "position_embedding",
        PositionEmbedding,
        sig("std:float"),
        "adds a learned L x D tensor to the tokens, initialised N(0, std^2) (std 0.02)",
        _embedding_shape,
        tensors=_embedding_tensors,
    ),
)
