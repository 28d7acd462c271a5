"""The fine-tuning specs both backends' tests compile (no framework imported here): a small
residual net whose stem and block calls are frozen, one statement at a lower rate and a new
head; the same net with another class count, whose weights a fine-tuning run starts from."""

from __future__ import annotations

BODY = """model FineTune
input image: 3 x 8 x 8
block basic(planes: int) {
  conv1 = conv(planes, kernel=3, pad=1, bias=false) |> batchnorm |> relu
  out = add(conv1, in) |> relu
}
stem   = conv(4, kernel=3, pad=1, bias=false) |> batchnorm |> relu
layer1 = basic(4) * 2
mid    = conv(4, kernel=3, pad=1) |> batchnorm |> relu
head   = global_avgpool |> flatten |> dropout(0.2) |> dense(CLASSES)
"""
FROZEN = ("stem", "layer1")  # their tensors, batch-norm statistics included, never change
SCALE = 0.25  # mid's learning-rate factor


def spec(classes: int, train: str) -> str:
    """The net with `classes` outputs and the train block's settings `train`."""
    return BODY.replace("CLASSES", str(classes)) + "train {\n" + train + "\n}\n"


# momentum, decay (not for biases), a frozen body, mid at a quarter of the rate
FINE_TUNE = spec(
    5,
    "  optimizer = sgd(lr=0.1, momentum=0.9, weight_decay=0.01, rule=torch, no_decay=[bias])\n"
    f"  freeze = [{', '.join(FROZEN)}]\n"
    f"  lr_scale = [mid({SCALE})]\n"
    "  batch = 4",
)
# plain SGD (no momentum, no decay): one step is -lr * factor * gradient
PLAIN_SCALED = spec(5, f"  optimizer = sgd(lr=0.1)\n  lr_scale = [mid({SCALE})]")
# AdamW, decoupled decay at each group's rate (torch.optim.AdamW)
ADAMW_SCALED = spec(
    5, f"  optimizer = adamw(lr=0.01, weight_decay=0.5)\n  lr_scale = [mid({SCALE})]"
)
# the model a fine-tuning run starts from: three classes, nothing frozen
SOURCE = spec(3, "  batch = 4")
# the trainers' flags of a fine-tuning run: 10 images, two steps of 4
FLAGS = ("--synthetic-per-class", 2, "--batch-size", 4, "--max-steps", 2, "--workers", 0)


def frozen(name: str) -> bool:
    """Whether a portable tensor name belongs to a frozen statement."""
    return name.split(".", 1)[0] in FROZEN
