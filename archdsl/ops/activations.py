"""Element-wise ops without parameters that keep the shape: activations, softmax, dropout."""

from __future__ import annotations

from typing import Literal

from pydantic import NonNegativeFloat

from archdsl.ir_types import Frozen, Probability, Span
from archdsl.ops.spec import OpSpec, Out, Shape
from archdsl.params import sig

# the activations that take no argument: one IR node serves them all
PLAIN = {
    "relu": "max(x, 0)",
    "relu6": "min(max(x, 0), 6)",
    "tanh": "the hyperbolic tangent",
    "sigmoid": "1 / (1 + exp(-x))",
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


class Softmax(Frozen):
    """Softmax over channels; a trailing softmax is applied at inference only."""

    op: Literal["softmax"] = "softmax"
    span: Span


class Dropout(Frozen):
    """Inverted dropout with drop probability p."""

    op: Literal["dropout"] = "dropout"
    span: Span
    p: Probability = 0.5


def same_shape(op, inputs: list[Shape]) -> Out:
    """The output has the input's shape."""
    (shape,) = inputs
    return Out(shape)


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
        "softmax",
        Softmax,
        (),
        "softmax over the channels; a trailing one is applied at inference only",
        same_shape,
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
)
