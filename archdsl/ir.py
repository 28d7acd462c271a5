"""The validated intermediate representation: immutable pydantic models, one per op."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, PositiveFloat, PositiveInt

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


class HeNormal(Frozen):
    """He et al. 2015: N(0, 2/fan), not truncated."""

    kind: Literal["he_normal"] = "he_normal"
    mode: Literal["fan_in", "fan_out"] = "fan_in"


class HeUniform(Frozen):
    """He et al. 2015: U(-sqrt(6/fan), sqrt(6/fan))."""

    kind: Literal["he_uniform"] = "he_uniform"
    mode: Literal["fan_in", "fan_out"] = "fan_in"


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
    | Uniform
    | Constant
    | HeNormal
    | HeUniform
    | GlorotNormal
    | GlorotUniform
    | FanInUniform,
    Field(discriminator="kind"),
]

# ----------------------------------------------------------------------------- ops


class Conv(Frozen):
    """2-D convolution (cross-correlation), optionally grouped."""

    op: Literal["conv"] = "conv"
    span: Span
    filters: PositiveInt
    kernel: Pair
    stride: Pair = (1, 1)
    pad: Padding = (0, 0)
    dilation: Pair = (1, 1)
    groups: PositiveInt = 1
    bias: bool = True
    ceil: bool = False
    weight_init: Init
    bias_init: Init


class MaxPool(Frozen):
    """Max pooling; padded cells never win."""

    op: Literal["maxpool"] = "maxpool"
    span: Span
    kernel: Pair
    stride: Pair
    pad: Padding = (0, 0)
    ceil: bool = False


class AvgPool(Frozen):
    """Average pooling; `count_pad` says whether padded cells count in the divisor."""

    op: Literal["avgpool"] = "avgpool"
    span: Span
    kernel: Pair
    stride: Pair
    pad: Padding = (0, 0)
    ceil: bool = False
    count_pad: bool = True


class GlobalAvgPool(Frozen):
    """Mean over all spatial positions, keeping a 1x1 map."""

    op: Literal["global_avgpool"] = "global_avgpool"
    span: Span


class AdaptiveAvgPool(Frozen):
    """Average pooling to a fixed output size, with PyTorch's window boundaries."""

    op: Literal["adaptive_avgpool"] = "adaptive_avgpool"
    span: Span
    size: Pair


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


class Dropout(Frozen):
    """Inverted dropout with drop probability p."""

    op: Literal["dropout"] = "dropout"
    span: Span
    p: Probability = 0.5


class Flatten(Frozen):
    """Flatten C x H x W to C*H*W features, in C, H, W order."""

    op: Literal["flatten"] = "flatten"
    span: Span


class Dense(Frozen):
    """Fully connected layer."""

    op: Literal["dense"] = "dense"
    span: Span
    units: PositiveInt
    bias: bool = True
    weight_init: Init
    bias_init: Init


class Activation(Frozen):
    """An element-wise activation without parameters."""

    op: Literal["relu", "relu6", "tanh", "sigmoid"]
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


class Resize(Frozen):
    """Spatial resize with half-pixel centres and no antialiasing."""

    op: Literal["resize"] = "resize"
    span: Span
    size: Pair
    mode: Literal["bilinear", "nearest"] = "bilinear"


class Concat(Frozen):
    """Concatenation of the statement's inputs along channels."""

    op: Literal["concat"] = "concat"
    span: Span


class Add(Frozen):
    """Element-wise sum of the statement's inputs."""

    op: Literal["add"] = "add"
    span: Span


Op = Annotated[
    Conv
    | MaxPool
    | AvgPool
    | GlobalAvgPool
    | AdaptiveAvgPool
    | LRN
    | BatchNorm
    | Dropout
    | Flatten
    | Dense
    | Activation
    | LeakyRelu
    | Softmax
    | Resize
    | Concat
    | Add,
    Field(discriminator="op"),
]

MULTI_INPUT_OPS = ("concat", "add")

# ----------------------------------------------------------------------------- graph


class Input(Frozen):
    """A named network input: C x H x W for images, or a flat feature count."""

    name: str
    shape: Shape
    span: Span


class Statement(Frozen):
    """A named statement: a chain of ops fed by one or more earlier tensors.

    Inside `towers N { }` a statement becomes N statements `NAME_t0`... with `tower` set; reading
    it from outside the block reads `NAME`, the concatenation of its towers.
    """

    name: str
    span: Span
    inputs: tuple[str, ...]
    input_spans: tuple[Span, ...] = ()
    ops: tuple[Op, ...]
    expect: Shape | None = None
    expect_span: Span | None = None
    tower: NonNegativeInt | None = None
    towers: PositiveInt = 1
    via: str | None = None


# ----------------------------------------------------------------------------- training recipe


class SGD(Frozen):
    """SGD with momentum; `rule` says where weight decay and the learning rate enter."""

    name: Literal["sgd"] = "sgd"
    lr: PositiveFloat = 0.01
    momentum: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    weight_decay: NonNegativeFloat = 0.0
    nesterov: bool = False
    rule: Literal["paper", "torch"] = "paper"
    no_decay: tuple[Literal["bias", "norm"], ...] = ()


class Adam(Frozen):
    """Adam (weight decay as an L2 term in the gradient) or AdamW (decoupled)."""

    name: Literal["adam", "adamw"]
    lr: PositiveFloat = 0.001
    beta1: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.9
    beta2: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.999
    eps: PositiveFloat = 1e-8
    weight_decay: NonNegativeFloat = 0.0
    no_decay: tuple[Literal["bias", "norm"], ...] = ()


class OnPlateau(Frozen):
    """Multiply the lr by `factor` when `metric` stops improving, at most `max_drops` times."""

    name: Literal["on_plateau"] = "on_plateau"
    factor: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.1
    patience: PositiveInt = 1
    metric: Literal["val_error", "val_loss", "val_top5_error"] = "val_error"
    max_drops: Annotated[int, Field(ge=1)] | None = None
    min_delta: NonNegativeFloat = 0.0


class StepDecay(Frozen):
    """Multiply the lr by `gamma` every `step_size` epochs."""

    name: Literal["step"] = "step"
    step_size: PositiveInt
    gamma: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.1


class MultiStep(Frozen):
    """Multiply the lr by `gamma` at each listed epoch."""

    name: Literal["multistep"] = "multistep"
    milestones: tuple[PositiveInt, ...]
    gamma: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.1


class Cosine(Frozen):
    """Cosine annealing from the initial lr to `min_lr` over all epochs."""

    name: Literal["cosine"] = "cosine"
    min_lr: NonNegativeFloat = 0.0


class NoSchedule(Frozen):
    """A constant learning rate."""

    name: Literal["none"] = "none"


class CrossEntropy(Frozen):
    """Cross-entropy on logits, with optional label smoothing."""

    name: Literal["cross_entropy"] = "cross_entropy"
    label_smoothing: Probability = 0.0


class RandomCrop(Frozen):
    """Resize the shorter side to `from_`, then take a random size x size crop."""

    name: Literal["random_crop"] = "random_crop"
    size: PositiveInt
    from_: PositiveInt = Field(alias="from")

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True, populate_by_name=True)


class CenterCrop(Frozen):
    """Resize the shorter side to `from_`, then take the central size x size crop."""

    name: Literal["center_crop"] = "center_crop"
    size: PositiveInt
    from_: PositiveInt = Field(alias="from")

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True, populate_by_name=True)


class HFlip(Frozen):
    """Mirror left-right with probability p."""

    name: Literal["hflip"] = "hflip"
    p: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5


class PCALighting(Frozen):
    """Krizhevsky's PCA colour augmentation with N(0, std) coefficients."""

    name: Literal["pca_lighting"] = "pca_lighting"
    std: NonNegativeFloat = 0.1


class Normalize(Frozen):
    """Subtract `mean` and divide by `std`, per channel, on [0, 1] pixels."""

    name: Literal["normalize"] = "normalize"
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[PositiveFloat, ...] = (0.229, 0.224, 0.225)


Optimizer = Annotated[SGD | Adam, Field(discriminator="name")]
Schedule = Annotated[
    OnPlateau | StepDecay | MultiStep | Cosine | NoSchedule, Field(discriminator="name")
]
Augment = Annotated[
    RandomCrop | CenterCrop | HFlip | PCALighting | Normalize, Field(discriminator="name")
]


class Train(Frozen):
    """The training recipe."""

    optimizer: Optimizer = Field(default_factory=lambda: SGD(lr=0.01, momentum=0.9))
    schedule: Schedule = Field(default_factory=NoSchedule)
    loss: CrossEntropy = Field(default_factory=CrossEntropy)
    batch: PositiveInt = 32
    epochs: PositiveInt = 10
    augment: tuple[Augment, ...] = ()
    span: Span | None = None


class Graph(Frozen):
    """A whole spec: the model's inputs, its statements in source order, and its recipe."""

    name: str
    file: str
    inputs: tuple[Input, ...]
    statements: tuple[Statement, ...]
    train: Train = Field(default_factory=Train)
    output: str
