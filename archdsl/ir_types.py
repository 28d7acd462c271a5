"""The IR's building blocks: the frozen base model, source spans, size types, initialisers."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt

Pair = tuple[PositiveInt, PositiveInt]
Shape = tuple[PositiveInt, ...]
NonNegativeInt = Annotated[int, Field(ge=0)]
Padding = Literal["same", "valid"] | tuple[NonNegativeInt, NonNegativeInt]
Probability = Annotated[float, Field(ge=0.0, lt=1.0)]


class Frozen(BaseModel):
    """Base of every IR model: immutable, no unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class Span(Frozen):
    """Where a construct stands in its source file (1-based line and column)."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True, from_attributes=True)

    file: str
    line: int
    column: int
    end_line: int
    end_column: int


# ----------------------------------------------------------------------------- initialisers


class Normal(Frozen):
    """Gaussian N(mean, std^2), not truncated."""

    kind: Literal["normal"] = "normal"
    mean: float = 0.0
    std: PositiveFloat


class Uniform(Frozen):
    """Uniform on [low, high)."""

    kind: Literal["uniform"] = "uniform"
    low: float
    high: float


class Constant(Frozen):
    """Every element equal to `value` (`zeros` and `ones` lower to this)."""

    kind: Literal["constant"] = "constant"
    value: float


class TruncNormal(Frozen):
    """N(mean, std^2) restricted to [low, high] (absolute bounds, as torch's trunc_normal_)."""

    kind: Literal["trunc_normal"] = "trunc_normal"
    mean: float = 0.0
    std: PositiveFloat
    low: float
    high: float


# the nonlinearities whose gain (torch.nn.init.calculate_gain's) scales he_normal / he_uniform
Nonlinearity = Literal["relu", "linear", "sigmoid", "tanh"]


class HeNormal(Frozen):
    """He et al. 2015: N(0, gain^2/fan) (gain sqrt(2) for relu), not truncated."""

    kind: Literal["he_normal"] = "he_normal"
    mode: Literal["fan_in", "fan_out"] = "fan_in"
    nonlinearity: Nonlinearity = "relu"


class HeUniform(Frozen):
    """He et al. 2015: U(+-gain * sqrt(3/fan)) (gain sqrt(2) for relu: sqrt(6/fan))."""

    kind: Literal["he_uniform"] = "he_uniform"
    mode: Literal["fan_in", "fan_out"] = "fan_in"
    nonlinearity: Nonlinearity = "relu"


class GlorotNormal(Frozen):
    """Glorot & Bengio 2010: N(0, 2/(fan_in+fan_out)), not truncated."""

    kind: Literal["glorot_normal"] = "glorot_normal"


class GlorotUniform(Frozen):
    """Glorot & Bengio 2010: U(-sqrt(6/(fan_in+fan_out)), +sqrt(...))."""

    kind: Literal["glorot_uniform"] = "glorot_uniform"


class FanInUniform(Frozen):
    """U(-scale/sqrt(fan_in), +scale/sqrt(fan_in)): PyTorch's default for weights and biases."""

    kind: Literal["fan_in_uniform"] = "fan_in_uniform"
    scale: PositiveFloat = 1.0


Init = Annotated[
    Normal
    | TruncNormal
    | Uniform
    | Constant
    | HeNormal
    | HeUniform
    | GlorotNormal
    | GlorotUniform
    | FanInUniform,
    Field(discriminator="kind"),
]
