"""A small spec with every training recipe, compiled for a backend, and the trainer run on it:
shared by both runtimes' end-to-end tests (no framework imported here)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

RECIPES_SPEC = """model RecipesNet
input image: 3 x 16 x 16
c1 = conv(8, kernel=3, pad=1, bias=false) |> batchnorm |> relu |> maxpool(2)
c2 = conv(8, kernel=3, pad=1, bias=false) |> batchnorm |> relu |> global_avgpool
fc = flatten |> dropout(0.2) |> dense(3)
train {
  optimizer      = rmsprop(lr=0.01, alpha=0.9, eps=0.001, momentum=0.9, weight_decay=0.0001,
                           rule=tf, no_decay=[norm])
  schedule       = cosine(warmup=1, warmup_factor=0.1)
  loss           = cross_entropy(label_smoothing=0.1)
  clip_grad_norm = 1.0
  ema            = ema(decay=0.9, every=2)
  batch          = 8
  epochs         = 3
  augment        = [random_resized_crop(16), hflip, trivial_augment,
                    rand_augment(num_ops=2, magnitude=9), auto_augment(imagenet), mixup(0.2),
                    cutmix(1.0), normalize]
}
"""
# 24 training images (8 per class), 3 steps per epoch
FLAGS = ("--synthetic-per-class", 8, "--batch-size", 8, "--seed", 3, "--workers", 0)
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}


def compile_recipes(dest: Path, backend: str) -> Path:
    """Compile RECIPES_SPEC for the backend into dest."""
    from archdsl.compiler import check_source
    from archdsl.emit import write_output

    checked = check_source(RECIPES_SPEC, "recipes.arch")
    assert checked.ok, [d.message for d in checked.diagnostics]
    write_output(checked, backend, dest, force=True)
    return dest


def train(directory: Path, out: Path, *args) -> subprocess.CompletedProcess:
    """Run directory/train.py with FLAGS, --out and args; fails on a non-zero exit."""
    argv = [sys.executable, str(directory / "train.py"), *map(str, (*FLAGS, "--out", out, *args))]
    done = subprocess.run(argv, cwd=directory, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def metrics(out: Path) -> list[list[str]]:
    """metrics.csv's rows without the timing columns."""
    lines = (out / "metrics.csv").read_text().splitlines()
    header = lines[0].split(",")
    keep = [i for i, k in enumerate(header) if k not in ("images_per_s", "seconds")]
    return [[row.split(",")[i] for i in keep] for row in lines[1:]]


def straight_and_resumed(directory: Path, tmp: Path) -> tuple[Path, Path]:
    """(OUT of 3 uninterrupted epochs, OUT of a run stopped after 2 epochs (6 steps: the EMA
    averaged after steps 4 and 6, past the warmup) and resumed)."""
    straight, resumed = tmp / "straight", tmp / "resumed"
    train(directory, straight, "--epochs", 3)
    train(directory, resumed, "--epochs", 3, "--max-steps", 6)
    train(directory, resumed, "--epochs", 3, "--resume")
    return straight, resumed
