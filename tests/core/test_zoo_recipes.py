"""The zoo's train blocks: every zoo spec lowers its block, which is torchvision's reference
recipe as the command in its comment gives it (flags read with train.py's defaults), or says
in a comment why it has none."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest

from archdsl import ir
from archdsl.compiler import check_source

ZOO = Path(__file__).resolve().parents[2] / "specs" / "zoo"
# references/classification/train.py's defaults for the flags the recipes use
DEFAULTS = {
    "--opt": "sgd",
    "--lr": "0.1",
    "--momentum": "0.9",
    "--wd": "1e-4",
    "--batch-size": "32",
    "--epochs": "90",
    "--lr-scheduler": "steplr",
    "--lr-step-size": "30",
    "--lr-gamma": "0.1",
    "--lr-warmup-epochs": "0",
    "--lr-warmup-decay": "0.01",
    "--label-smoothing": "0",
    "--random-erase": "0",
    "--mixup-alpha": "0",
    "--cutmix-alpha": "0",
    "--model-ema-steps": "32",
    "--model-ema-decay": "0.99998",
}
# each spec's recipe command as its comment quotes it, and the processes it ran on
COMMANDS = {
    "resnet18": ("--model resnet18", 8),
    "resnet34": ("--model resnet34", 8),
    "resnet50": ("--model resnet50", 8),
    "resnet101": ("--model resnet101", 8),
    "resnext50_32x4d": ("--model resnext50_32x4d --epochs 100", 8),
    "vgg11": ("--model vgg11 --lr 1e-2", 8),
    "vgg16": ("--model vgg16 --lr 1e-2", 8),
    "vgg16_bn": ("--model vgg16_bn", 8),
    "mobilenet_v2": (
        "--model mobilenet_v2 --epochs 300 --lr 0.045 --wd 0.00004 --lr-step-size 1 --lr-gamma 0.98",
        8,
    ),
    **{
        f"mobilenet_v3_{size}": (
            f"--model mobilenet_v3_{size} --epochs 600 --opt rmsprop --batch-size 128 --lr 0.064"
            " --wd 0.00001 --lr-step-size 2 --lr-gamma 0.973 --auto-augment imagenet"
            " --random-erase 0.2",
            8,
        )
        for size in ("large", "small")
    },
    "regnet_y_400mf": (
        "--model regnet_y_400mf --epochs 100 --batch-size 128 --wd 0.00005 --lr 0.4"
        " --lr-scheduler cosineannealinglr --lr-warmup-method linear --lr-warmup-epochs 5"
        " --lr-warmup-decay 0.1",
        8,
    ),
    "convnext_tiny": (
        "--model convnext_tiny --batch-size 128 --opt adamw --lr 1e-3 --lr-scheduler"
        " cosineannealinglr --lr-warmup-epochs 5 --lr-warmup-method linear --auto-augment ta_wide"
        " --epochs 600 --random-erase 0.1 --label-smoothing 0.1 --mixup-alpha 0.2 --cutmix-alpha"
        " 1.0 --weight-decay 0.05 --norm-weight-decay 0.0 --train-crop-size 176 --model-ema"
        " --val-resize-size 232 --ra-sampler --ra-reps 4",
        8,
    ),
    "vit_b_16": (
        "--model vit_b_16 --epochs 300 --batch-size 512 --opt adamw --lr 0.003 --wd 0.3"
        " --lr-scheduler cosineannealinglr --lr-warmup-method linear --lr-warmup-epochs 30"
        " --lr-warmup-decay 0.033 --amp --label-smoothing 0.11 --mixup-alpha 0.2 --auto-augment"
        " ra --clip-grad-norm 1 --ra-sampler --cutmix-alpha 1.0 --model-ema",
        8,
    ),
    # pytorch/examples' imagenet main.py (vision#49): one process, the same defaults
    **{
        f"squeezenet1_{v}": (
            f"--arch squeezenet1_{v} --epochs 100 --lr 0.01 --weight-decay 0.0002 --batch-size 128",
            1,
        )
        for v in (0, 1)
    },
}
NOT_TORCHVISION = {"lenet5"}  # not a torchvision model: its block is the repository's own
POLICIES = {"imagenet": "auto_augment", "ta_wide": "trivial_augment", "ra": "rand_augment"}


def comment_text(source: str) -> str:
    """The spec's comments as one line of words."""
    lines = [line.split("#", 1)[1] for line in source.splitlines() if "#" in line]
    return " ".join(" ".join(lines).split())


def flags(command: str) -> dict[str, str]:
    """The command's flags over train.py's defaults (a flag without a value is "on")."""
    words = command.replace("--weight-decay", "--wd").split()
    given = {}
    for i, word in enumerate(words):
        if word.startswith("--"):
            following = words[i + 1] if i + 1 < len(words) else "--"
            given[word] = "on" if following.startswith("--") else following
    return {**DEFAULTS, **given}


def expected_optimizer(f: dict[str, str]):
    """train.py's optimizer for the flags (its RMSprop: eps 0.0316, alpha 0.9)."""
    lr, wd = float(f["--lr"]), float(f["--wd"])
    no_decay = ("norm",) if float(f.get("--norm-weight-decay", "-1")) == 0 else ()
    if f["--opt"] == "rmsprop":
        return ir.RMSprop(
            lr=lr, alpha=0.9, eps=0.0316, momentum=float(f["--momentum"]), weight_decay=wd
        )
    if f["--opt"] == "adamw":
        return ir.Adam(name="adamw", lr=lr, weight_decay=wd, no_decay=no_decay)
    return ir.SGD(
        lr=lr, momentum=float(f["--momentum"]), weight_decay=wd, rule="torch", no_decay=no_decay
    )


def expected_schedule(f: dict[str, str]):
    """StepLR, or LinearLR warmup then CosineAnnealingLR (to 0)."""
    if f["--lr-scheduler"] == "cosineannealinglr":
        return ir.Cosine(
            warmup=int(f["--lr-warmup-epochs"]), warmup_factor=float(f["--lr-warmup-decay"])
        )
    return ir.StepDecay(step_size=int(f["--lr-step-size"]), gamma=float(f["--lr-gamma"]))


def expected_augment(f: dict[str, str]) -> list[str]:
    """ClassificationPresetTrain's steps, then the batch-level mixes."""
    names = ["random_resized_crop", "hflip"]
    names += [POLICIES[f["--auto-augment"]]] if "--auto-augment" in f else []
    names += ["normalize"] + (["random_erasing"] if float(f["--random-erase"]) else [])
    return names + [m for m in ("mixup", "cutmix") if float(f[f"--{m}-alpha"])]


@cache
def train_of(name: str):
    """The spec's source and its checked train section."""
    source = (ZOO / f"{name}.arch").read_text(encoding="utf-8")
    checked = check_source(source, f"{name}.arch")
    assert checked.ok, [d.message for d in checked.diagnostics]
    return source, checked.graph.train


@pytest.mark.parametrize("name", sorted(p.stem for p in ZOO.glob("*.arch")))
def test_every_zoo_spec_has_a_train_block_or_says_why_not(name):
    source, train = train_of(name)
    if name in COMMANDS or name in NOT_TORCHVISION:
        assert re.search(r"^train \{", source, re.M) and train.span is not None
    else:
        assert "train {" not in source and train.span is None
        assert "# No train block: torchvision's weights" in source


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_train_block_is_the_command_its_comment_quotes(name):
    source, train = train_of(name)
    command, processes = COMMANDS[name]
    assert command in comment_text(source)
    f = flags(command)
    assert train.optimizer == expected_optimizer(f)
    assert train.schedule == expected_schedule(f)
    assert (train.batch, train.epochs) == (int(f["--batch-size"]) * processes, int(f["--epochs"]))
    assert train.loss.label_smoothing == float(f["--label-smoothing"])
    assert [step.name for step in train.augment] == expected_augment(f)
    by_name = {step.name: step for step in train.augment}
    assert by_name["random_resized_crop"].size == 224
    if "random_erasing" in by_name:
        assert by_name["random_erasing"].p == float(f["--random-erase"])
    for mix in ("mixup", "cutmix"):
        assert mix not in by_name or by_name[mix].alpha == float(f[f"--{mix}-alpha"])
    assert train.clip_grad_norm == (
        float(f["--clip-grad-norm"]) if "--clip-grad-norm" in f else None
    )
    if "--model-ema" in f:
        decay, every = float(f["--model-ema-decay"]), int(f["--model-ema-steps"])
        assert train.ema == ir.EMA(decay=decay, every=every, adjust=True)
    else:
        assert train.ema is None
