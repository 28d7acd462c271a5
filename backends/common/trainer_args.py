"""The flags and one-line errors both trainers share (the backend adds its own flags)."""

import argparse
from pathlib import Path


class UsageError(Exception):
    """A bad flag, device or checkpoint, reported as one line without a traceback."""


class Interrupted(Exception):
    """Ctrl-C after the checkpoint was saved."""


def common_parser(spec, checkpoint):
    """A parser with the flags of both trainers; defaults come from the spec's train section."""
    p = argparse.ArgumentParser(
        description=f"Train {spec.MODEL_NAME} from {spec.SPEC}."
    )
    p.add_argument(
        "--data", type=Path, help="ImageFolder root: DIR/train/<class>/*, DIR/val/..."
    )
    p.add_argument(
        "--synthetic-per-class",
        type=int,
        default=100,
        metavar="N",
        help="without --data: synthetic training images per class (val: N // 5)",
    )
    p.add_argument("--epochs", type=int, default=spec.TRAIN["epochs"])
    p.add_argument(
        "--batch-size", type=int, default=spec.TRAIN["batch"], help="global batch"
    )
    p.add_argument(
        "--lr", type=float, help="initial learning rate (default: the spec's)"
    )
    p.add_argument(
        "--max-steps", type=int, help="stop after this many optimizer steps in all"
    )
    p.add_argument(
        "--save-every",
        type=int,
        default=0,
        metavar="STEPS",
        help="also checkpoint every STEPS optimizer steps (0: once per epoch)",
    )
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("runs"))
    p.add_argument(
        "--resume",
        nargs="?",
        const="",
        metavar="PATH",
        help=f"continue from a checkpoint (default: OUT/{checkpoint})",
    )
    p.add_argument(
        "--ten-crop", action="store_true", help="validate on 10 crops per image"
    )
    return p
