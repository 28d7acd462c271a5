"""Ops without parameters that keep the shape: activations, softmax, dropout, stochastic depth."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, NonNegativeFloat

from archdsl.ir_types import Frozen, Probability, Span
from archdsl.ops.spec import ArgumentError, OpSpec, Out, Shape, need_one_of
from archdsl.params import sig

# the activations that take no argument: one IR node serves them all
PLAIN = {
    "relu": "max(x, 0)",
    "relu6": "min(max(x, 0), 6)",
    "tanh": "the hyperbolic tangent",
    "sigmoid": "1 / (1 + exp(-x))",
    "silu": "x * sigmoid(x) (swish)",
    "hardswish": "x * relu6(x + 3) / 6",
    "hardsigmoid": "relu6(x + 3) / 6",
    "mish": "x * tanh(softplus(x))",
}
PLAIN_NAMES = tuple(PLAIN)


class Activation(Frozen):
    """An element-wise activation without parameters."""

    op: Literal[PLAIN_NAMES]
    span: Span


class LeakyRelu(Frozen):
    """max(x, slope * x)."""

    op: Literal["leaky_relu"] = "leaky_relu"
    span: Span
    slope: NonNegativeFloat = 0.01


class Gelu(Frozen):
    """x * Phi(x), Phi the standard normal CDF (erf), or PyTorch's tanh approximation of it."""

    op: Literal["gelu"] = "gelu"
    span: Span
    approximate: Literal["none", "tanh"] = "none"


class Softmax(Frozen):
    """Softmax over channels; a trailing softmax is applied at inference only."""

    op: Literal["softmax"] = "softmax"
    span: Span


class Dropout(Frozen):
    """Inverted dropout with drop probability p."""

    op: Literal["dropout"] = "dropout"
    span: Span
    p: Probability = 0.5


class StochasticDepth(Frozen):
    """torchvision's stochastic depth in row mode: each example's whole tensor is zeroed with
    probability p in training (survivors scaled by 1 / (1 - p)); the identity in eval."""

    op: Literal["stochastic_depth"] = "stochastic_depth"
    span: Span
    p: Annotated[float, Field(ge=0.0, le=1.0)]


def same_shape(op, inputs: list[Shape]) -> Out:
    """The output has the input's shape."""
    (shape,) = inputs
    return Out(shape)


def _softmax_shape(op: Softmax, inputs: list[Shape]) -> Out:
    """Softmax over the channels of a map or the features of a vector: the shape is kept."""
    (shape,) = inputs
    need_one_of(shape, ("map", "vector"), "softmax")
    return Out(shape)


def _drop_probability(values: dict) -> dict:
    """stochastic_depth's p is a probability, 0 and 1 included (torchvision's range)."""
    p = values["p"]
    if not 0.0 <= p <= 1.0:
        raise ArgumentError(
            "E004",
            "p",
            f"stochastic_depth's p is the probability of dropping an example, not {p:g}",
            "use a value from 0 (never drop) to 1 (always drop), e.g. 0.1",
        )
    return values


SPECS = (
    *(
        OpSpec(name, Activation, (), f"element-wise {doc}", same_shape, feature_wise=True)
        for name, doc in PLAIN.items()
    ),
    OpSpec(
        "leaky_relu",
        LeakyRelu,
        sig("slope:nonneg"),
        "element-wise max(x, slope * x)",
        same_shape,
        feature_wise=True,
    ),
    OpSpec(
        "gelu",
        Gelu,
        sig("approximate:choice:none|tanh"),
        "element-wise x * Phi(x) (erf), or its tanh approximation with `approximate=tanh`",
        same_shape,
        feature_wise=True,
    ),
    OpSpec(
        "softmax",
        Softmax,
        (),
        "softmax over the channels; a trailing one is applied at inference only",
        _softmax_shape,
        feature_wise=True,
    ),
    OpSpec(
        "dropout",
        Dropout,
        sig("p:float"),
        "zeroes each value with probability p in training and scales the rest by 1 / (1 - p)",
        same_shape,
        feature_wise=True,
    ),
    OpSpec(
        "stochastic_depth",
        StochasticDepth,
        sig("p:float!"),
        "in training zeroes each example with probability p and scales the rest by 1 / (1 - p)",
        same_shape,
        prepare=_drop_probability,
        feature_wise=True,
    ),
)
