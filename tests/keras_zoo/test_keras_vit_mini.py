"""The pocket ViT (tests/torch_zoo/specs/vit_mini.arch) trains in the Keras trainer on the
embedded synthetic data and beats chance, as it does in PyTorch's (tests/torch_zoo), in the
default run as issue 13 asks (about 15 s, most of it TensorFlow's start)."""

import csv
import os
import subprocess
import sys

import pytest
from kerasgen import ROOT, check, compile_to

pytest.importorskip("keras")

SPEC = ROOT / "tests" / "torch_zoo" / "specs" / "vit_mini.arch"
CHANCE = 0.9


def test_vit_mini_trains_on_synthetic_images_and_beats_chance(tmp_path):
    directory = compile_to(check(SPEC.read_text(encoding="utf-8"), str(SPEC)), tmp_path / "k")
    out = tmp_path / "run"
    flags = ["--workers", "0", "--synthetic-per-class", "40", "--max-steps", "36"]
    done = subprocess.run(
        [sys.executable, "train.py", *flags, "--out", str(out)],
        cwd=directory,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with open(out / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [12, 24, 36]
    losses = [float(r["train_loss"]) for r in rows]
    assert losses[-1] < losses[0] - 0.5
    assert float(rows[-1]["val_error"]) < CHANCE - 0.3  # 80 val images: chance's std 0.034
