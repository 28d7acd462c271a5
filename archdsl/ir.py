"""The validated intermediate representation: immutable pydantic models.

The building blocks (the frozen base, spans, sizes, initialisers) are in ir_types.py, each op's
node beside its declaration in the ops package; both are re-exported here.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import ConfigDict, Field, NonNegativeFloat, PositiveFloat, PositiveInt

from archdsl.ir_types import (  # noqa: F401 - re-exported: the IR's public names
    Constant,
    FanInUniform,
    Frozen,
    GlorotNormal,
    GlorotUniform,
    HeNormal,
    HeUniform,
    Init,
    NonNegativeInt,
    Normal,
    Padding,
    Pair,
    Probability,
    Shape,
    Span,
    TruncNormal,
    Uniform,
)
from archdsl.ops import NODES
from archdsl.ops.activations import (  # noqa: F401
    Activation,
    Dropout,
    Gelu,
    LeakyRelu,
    Softmax,
    StochasticDepth,
)
from archdsl.ops.channels import ChannelShuffle, Chunk  # noqa: F401
from archdsl.ops.linear import Dense  # noqa: F401
from archdsl.ops.merges import Add, Concat, Mul  # noqa: F401
from archdsl.ops.norms import LRN, BatchNorm, LayerNorm, LayerScale  # noqa: F401
from archdsl.ops.sequence import Embedding, Recurrent  # noqa: F401
from archdsl.ops.shaping import Flatten, Resize  # noqa: F401
from archdsl.ops.swin import SpaceToDepth, WindowAttention  # noqa: F401
from archdsl.ops.upsampling import ConvTranspose, Upsample  # noqa: F401
from archdsl.ops.windows import (  # noqa: F401
    AdaptiveAvgPool,
    AvgPool,
    Conv,
    GlobalAvgPool,
    MaxPool,
)

MAGNITUDE_BINS = 31  # torchvision's num_magnitude_bins of TrivialAugmentWide and RandAugment
MAX_POLICY_OPS = 14  # rand_augment's num_ops: at most the size of its op set

# every op's node, told apart by its `op` field
Op = Annotated[Union[NODES], Field(discriminator="op")]  # noqa: UP007 - a tuple of classes

# ----------------------------------------------------------------------------- graph


class Input(Frozen):
    """A named network input: C x H x W for images, a flat feature count, or (with `vocab`) a
    sequence of `shape[0]` integer token ids, each below `vocab`."""

    name: str
    shape: Shape
    span: Span
    vocab: PositiveInt | None = None


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


class BlockStatement(Frozen):
    """A statement of a block's body, as generated code runs it for every call of the block."""

    name: str
    reads: tuple[str, ...] = ()  # `in` or statements of the block; () reads the one before it
    condition: str | None = None  # Python with `{name}` placeholders (pyexpr.py); None: always
    calls: bool = False  # it calls blocks


class Block(Frozen):
    """A block that generated code may run as one class: its statements, and the names its
    conditions read (a call's values for them decide which statements it has)."""

    name: str
    statements: tuple[BlockStatement, ...]
    reads: tuple[str, ...] = ()


class BlockCall(Frozen):
    """One call of a block: the prefix of its statements' names (`layer2.0`), the name it
    reads, which of the block's statements it has, and the values its conditions read."""

    path: str
    block: str
    source: str
    present: tuple[NonNegativeInt, ...]
    values: tuple[tuple[str, bool | int | float | str | tuple[int, ...]], ...] = ()


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


class RMSprop(Frozen):
    """RMSprop: eps outside the square root (`rule=torch`) or inside it, as TF (`rule=tf`)."""

    name: Literal["rmsprop"] = "rmsprop"
    lr: PositiveFloat = 0.01
    alpha: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.99
    eps: PositiveFloat = 1e-8
    momentum: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    weight_decay: NonNegativeFloat = 0.0
    rule: Literal["torch", "tf"] = "torch"
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
    """Linear warmup from lr * `warmup_factor` over `warmup` epochs, then cosine annealing
    from the initial lr to `min_lr` over the remaining epochs (stepped once per epoch)."""

    name: Literal["cosine"] = "cosine"
    min_lr: NonNegativeFloat = 0.0
    warmup: NonNegativeInt = 0
    warmup_factor: Annotated[float, Field(gt=0.0, le=1.0)] = 0.01


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


class RandomResizedCrop(Frozen):
    """torchvision's RandomResizedCrop: a random box of `scale` of the area and `ratio` aspect,
    resized to size x size; evaluation resizes the shorter side to `from_` and centre-crops."""

    name: Literal["random_resized_crop"] = "random_resized_crop"
    size: PositiveInt
    scale: tuple[PositiveFloat, ...] = (0.08, 1.0)  # [low, high]: lowering checks the pair
    ratio: tuple[PositiveFloat, ...] = (3 / 4, 4 / 3)
    from_: PositiveInt | None = Field(default=None, alias="from")

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True, populate_by_name=True)


class RandomErasing(Frozen):
    """torchvision's RandomErasing: with probability p, a random box of `scale` of the area and
    `ratio` aspect set to `value` (in the pipeline's units at that point)."""

    name: Literal["random_erasing"] = "random_erasing"
    p: Probability = 0.5
    scale: tuple[PositiveFloat, ...] = (0.02, 0.33)  # [low, high]: lowering checks the pair
    ratio: tuple[PositiveFloat, ...] = (0.3, 3.3)
    value: float = 0.0


class TrivialAugment(Frozen):
    """torchvision's TrivialAugmentWide on uint8 pixels: one op of its 14, at a uniform bin of
    its 31 magnitudes."""

    name: Literal["trivial_augment"] = "trivial_augment"


class RandAugment(Frozen):
    """torchvision's RandAugment on uint8 pixels: num_ops ops in turn, each at bin `magnitude`
    of 31."""

    name: Literal["rand_augment"] = "rand_augment"
    num_ops: Annotated[int, Field(ge=0, le=MAX_POLICY_OPS)] = 2
    magnitude: Annotated[int, Field(ge=0, le=MAGNITUDE_BINS - 1)] = 9


class AutoAugment(Frozen):
    """torchvision's AutoAugment on uint8 pixels: one of the policy's 25 sub-policies, each two
    ops applied with their own probability at their own bin of 10."""

    name: Literal["auto_augment"] = "auto_augment"
    policy: Literal["imagenet", "cifar10", "svhn"] = "imagenet"


class Mixup(Frozen):
    """Batch-level: each image blended with the next one of the batch (torchvision's MixUp),
    lambda ~ Beta(alpha, alpha), the targets blended alike."""

    name: Literal["mixup"] = "mixup"
    alpha: PositiveFloat = 0.2


class Cutmix(Frozen):
    """Batch-level: a box of the next image of the batch pasted in (torchvision's CutMix),
    lambda ~ Beta(alpha, alpha), the targets blended by the pasted area."""

    name: Literal["cutmix"] = "cutmix"
    alpha: PositiveFloat = 1.0


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


Optimizer = Annotated[SGD | Adam | RMSprop, Field(discriminator="name")]
Schedule = Annotated[
    OnPlateau | StepDecay | MultiStep | Cosine | NoSchedule, Field(discriminator="name")
]
Augment = Annotated[
    RandomCrop
    | CenterCrop
    | RandomResizedCrop
    | HFlip
    | PCALighting
    | Normalize
    | RandomErasing
    | TrivialAugment
    | RandAugment
    | AutoAugment
    | Mixup
    | Cutmix,
    Field(discriminator="name"),
]


class EMA(Frozen):
    """An exponential moving average of the weights and batch-norm statistics, updated every
    `every` optimizer steps and evaluated in place of the raw weights (torchvision's)."""

    name: Literal["ema"] = "ema"
    decay: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.9999
    every: PositiveInt = 1
    adjust: bool = False


class Train(Frozen):
    """The training recipe."""

    optimizer: Optimizer = Field(default_factory=lambda: SGD(lr=0.01, momentum=0.9))
    schedule: Schedule = Field(default_factory=NoSchedule)
    loss: CrossEntropy = Field(default_factory=CrossEntropy)
    batch: PositiveInt = 32
    epochs: PositiveInt = 10
    augment: tuple[Augment, ...] = ()
    clip_grad_norm: PositiveFloat | None = None
    ema: EMA | None = None
    # fine-tuning (train_groups.py): the statements (tensor-name prefixes: `stem`, `layer1`, a
    # tower's `conv1_t0`) whose parameters and batch-norm statistics stay fixed, and those
    # whose learning rate is multiplied by a factor
    freeze: tuple[str, ...] = ()
    lr_scale: tuple[tuple[str, PositiveFloat], ...] = ()
    span: Span | None = None


class Graph(Frozen):
    """A whole spec: the model's inputs, its statements in source order, and its recipe."""

    name: str
    file: str
    inputs: tuple[Input, ...]
    statements: tuple[Statement, ...]
    train: Train = Field(default_factory=Train)
    output: str
    blocks: tuple[Block, ...] = ()  # the blocks every call of which Python can run as a class
    calls: tuple[BlockCall, ...] = ()  # the calls of those blocks, in the order expanded
