"""Normalisations (the paper's local response normalisation, batch and layer normalisation)
and the learned per-channel scale that follows a normalised branch (layer scale)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, NonNegativeFloat, PositiveFloat, PositiveInt

from archdsl.ir_types import Frozen, Span
from archdsl.ops.spec import (
    OpSpec,
    Out,
    Shape,
    ShapeError,
    Tensor,
    features,
    fmt,
    layout,
    need,
    need_one_of,
)
from archdsl.params import sig


class LRN(Frozen):
    """Local response normalisation, paper convention: b = a / (k + alpha * sum a^2)^beta."""

    op: Literal["lrn"] = "lrn"
    span: Span
    size: PositiveInt = 5
    alpha: NonNegativeFloat = 1e-4
    beta: NonNegativeFloat = 0.75
    k: NonNegativeFloat = 2.0


class BatchNorm(Frozen):
    """Batch normalisation; momentum is the weight of the new batch statistic (PyTorch's)."""

    op: Literal["batchnorm"] = "batchnorm"
    span: Span
    eps: PositiveFloat = 1e-5
    momentum: Annotated[float, Field(gt=0.0, le=1.0)] = 0.1


class LayerNorm(Frozen):
    """Layer normalisation over the channels at each position of a map (ConvNeXt's
    LayerNorm2d), over the features of a vector, or over the D features of each token;
    biased variance, eps inside the root."""

    op: Literal["layernorm"] = "layernorm"
    span: Span
    eps: PositiveFloat = 1e-5


class LayerScale(Frozen):
    """Each channel (or feature) times a learned scale, initialised to `init`."""

    op: Literal["layer_scale"] = "layer_scale"
    span: Span
    init: float = 1e-6


def _lrn_shape(op: LRN, inputs: list[Shape]) -> Out:
    """LRN normalises across the channels of a map: the shape is kept."""
    (shape,) = inputs
    need(shape, "map", "lrn")
    return Out(shape)


def _batchnorm_shape(op: BatchNorm, inputs: list[Shape]) -> Out:
    """Batch norm of a map (per channel) or a vector (per feature): the shape is kept."""
    (shape,) = inputs
    need_one_of(shape, ("map", "vector"), "batchnorm")
    return Out(shape)


def _batchnorm_tensors(op: BatchNorm, inputs: list[Shape]) -> dict[str, Tensor]:
    """Scale and shift (trained), running mean and variance (not), one per channel."""
    channels = (inputs[0][0],)
    return {
        "weight": Tensor(channels),
        "bias": Tensor(channels),
        "running_mean": Tensor(channels, trainable=False),
        "running_var": Tensor(channels, trainable=False),
    }


def _per_channel_shape(op, inputs: list[Shape]) -> Out:
    """An op acting per channel of a map or per feature of a vector: the shape is kept."""
    (shape,) = inputs
    if layout(shape) not in ("map", "vector"):
        raise ShapeError(
            "E018",
            f"{op.op} needs a C x H x W map or a flat vector, got {fmt(shape)}",
            "it acts on the channels of a map or the features of a vector",
        )
    return Out(shape)


def _layernorm_shape(op: LayerNorm, inputs: list[Shape]) -> Out:
    """Layer norm of a map (over channels), a vector or tokens (over D): the shape is kept."""
    (shape,) = inputs
    need_one_of(shape, ("map", "vector", "tokens"), "layernorm")
    return Out(shape)


def _scale_and_shift(op: LayerNorm, inputs: list[Shape]) -> dict[str, Tensor]:
    """Scale (weight) and shift (bias), one per channel (or token feature), both trained."""
    channels = (features(inputs[0]),)
    return {"weight": Tensor(channels), "bias": Tensor(channels)}


def _scale(op: LayerScale, inputs: list[Shape]) -> dict[str, Tensor]:
    """One trained scale per channel."""
    return {"scale": Tensor((inputs[0][0],))}


SPECS = (
    OpSpec(
        "lrn",
        LRN,
        sig("size:count", "alpha:nonneg", "beta:nonneg", "k:nonneg"),
        "b = a / (k + alpha * sum of a^2 over `size` channels)^beta (alpha not divided by size)",
        _lrn_shape,
    ),
    OpSpec(
        "batchnorm",
        BatchNorm,
        sig("eps:float", "momentum:float"),
        "batch normalisation per channel (or feature), with running statistics",
        _batchnorm_shape,
        tensors=_batchnorm_tensors,
        feature_wise=True,
    ),
    OpSpec(
        "layernorm",
        LayerNorm,
        sig("eps:float"),
        "layer normalisation over the channels at each position (the features of a vector or "
        "of each token)",
        _layernorm_shape,
        tensors=_scale_and_shift,
        feature_wise=True,
    ),
    OpSpec(
        "layer_scale",
        LayerScale,
        sig("init:float"),
        "each channel (or feature) times a learned scale, initialised to `init`",
        _per_channel_shape,
        tensors=_scale,
        feature_wise=True,
    ),
)
