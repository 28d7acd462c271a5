"""LeNet-5, a small-input ResNet-18, a small EfficientNet and a small ConvNeXt train on the
embedded synthetic data and beat chance.

Each runs the compiled train.py in a subprocess (one OpenMP thread: on 2 shared cores more
threads spin-wait and run several times slower) and reads OUT/metrics.csv. Chance top-1 error
with 10 balanced classes is 0.9.
"""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ptgen import ROOT, check_file, compile_to

pytest.importorskip("torch")

HERE = Path(__file__).resolve().parent
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
CHANCE = 0.9


def train(directory, out, *flags):
    """Run directory/train.py with flags; returns the rows of OUT/metrics.csv."""
    cmd = [sys.executable, "train.py", "--workers", "0", "--device", "cpu", "--out", str(out)]
    done = subprocess.run(
        [*cmd, *map(str, flags)],
        cwd=directory,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with open(out / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def lenet5(tmp_path_factory):
    """specs/zoo/lenet5.arch compiled for PyTorch."""
    return compile_to(check_file(ROOT / "specs/zoo/lenet5.arch"), tmp_path_factory.mktemp("lenet5"))


def test_lenet5_trains_on_grey_synthetic_images_and_beats_chance(lenet5, tmp_path):
    # 2000 images, 125 steps per epoch at batch 16 (the spec's 64 gives too few steps to learn)
    flags = ("--synthetic-per-class", 200, "--epochs", 5, "--batch-size", 16, "--max-steps", 625)
    rows = train(lenet5, tmp_path, *flags)
    assert [int(r["step"]) for r in rows] == [125, 250, 375, 500, 625]
    losses = [float(r["train_loss"]) for r in rows]
    top1 = float(rows[-1]["val_error"])
    print(f"lenet5: train loss {losses[0]:.3f} -> {losses[-1]:.3f}; val top-1 error {top1:.3f}")
    assert losses[-1] < losses[0] - 0.5
    assert top1 < CHANCE - 0.2  # 400 val images: chance's standard deviation is 0.015


GREY_CHECK = """
import sys, numpy as np, train, model
from augment import to_gray
args = train.parse_args(["--synthetic-per-class", "2", "--workers", "0", "--out", sys.argv[1]])
trainer = train.Trainer(args)
trainer.stop.close()
assert model.INPUT_SHAPE == (1, 32, 32), model.INPUT_SHAPE
for dataset in (trainer.train_set, trainer.val_set):
    for index in range(4):
        x, label = dataset[(0, index)]
        image, same = dataset.data[index]
        assert label == same and image.shape == (32, 32, 3), image.shape
        expected = (to_gray(image).astype(np.float32) / 255 - 0.5) / 0.5
        assert x.shape == (32, 32, 1) and x.dtype == np.float32, (x.shape, x.dtype)
        np.testing.assert_allclose(x, expected, atol=1e-6)
        luma = image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        assert np.abs((x[..., 0] * 0.5 + 0.5) * 255 - luma).max() <= 0.5 + 1e-3
        assert x.max() > x.min()  # an image, not a constant
print("grey ok")
"""


def test_lenet5_trainer_feeds_one_channel_luma(lenet5, tmp_path):
    """INPUT_SHAPE[0] == 1: the trainer turns the RGB synthetic images into normalised luma."""
    done = subprocess.run(
        [sys.executable, "-c", GREY_CHECK, str(tmp_path)],
        cwd=lenet5,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and "grey ok" in done.stdout, done.stdout + done.stderr


def test_small_resnet18_variant_checks_clean():
    checked = check_file(HERE / "specs" / "resnet18_small.arch")
    assert checked.diagnostics == []
    zoo = (ROOT / "specs/zoo/resnet18.arch").read_text(encoding="utf-8")
    variant = (HERE / "specs" / "resnet18_small.arch").read_text(encoding="utf-8")
    block = zoo[zoo.index("block basic") : zoo.index("stem")]
    assert block in variant  # the zoo's residual block, unchanged


@pytest.mark.slow  # the default run trains EfficientNet, ConvNeXt, ViT and LeNet-5
def test_small_resnet18_trains_on_synthetic_images_and_beats_chance(tmp_path):
    checked = check_file(HERE / "specs" / "resnet18_small.arch")
    directory = compile_to(checked, tmp_path / "resnet18_small")
    # 300 images, 9 steps per epoch at the variant spec's batch 32
    rows = train(directory, tmp_path / "run", "--synthetic-per-class", 30, "--max-steps", 27)
    assert [int(r["step"]) for r in rows] == [9, 18, 27]
    losses = [float(r["train_loss"]) for r in rows]
    top1 = float(rows[-1]["val_error"])
    print(f"resnet18_small: train loss {losses[0]:.3f} -> {losses[-1]:.3f}; val top-1 {top1:.3f}")
    assert losses[-1] < losses[0] - 0.5
    assert top1 < CHANCE - 0.3  # 60 val images: chance's standard deviation is 0.04


def test_small_efficientnet_trains_on_synthetic_images_and_beats_chance(tmp_path):
    """The zoo's MBConv block (SiLU, squeeze-and-excitation through `mul`, stochastic depth by
    position) in five blocks at 32 x 32 learns the embedded synthetic classes."""
    path = HERE / "specs" / "efficientnet_small.arch"
    checked = check_file(path)
    assert checked.diagnostics == []
    zoo = (ROOT / "specs/zoo/efficientnet_b0.arch").read_text(encoding="utf-8")
    block = zoo[zoo.index("block mbconv") : zoo.index("stem")]
    assert block in path.read_text(encoding="utf-8")  # the zoo's block, unchanged
    directory = compile_to(checked, tmp_path / "efficientnet_small")
    # 300 images, 9 steps per epoch at the spec's batch 32
    rows = train(directory, tmp_path / "run", "--synthetic-per-class", 30, "--max-steps", 27)
    assert [int(r["step"]) for r in rows] == [9, 18, 27]
    losses = [float(r["train_loss"]) for r in rows]
    top1 = float(rows[-1]["val_error"])
    print(
        f"efficientnet_small: train loss {losses[0]:.3f} -> {losses[-1]:.3f}; val top-1 {top1:.3f}"
    )
    assert losses[-1] < losses[0] - 0.5
    assert top1 < CHANCE - 0.3  # 60 val images: chance's standard deviation is 0.04


def test_convnext_mini_uses_the_zoos_block():
    checked = check_file(HERE / "specs" / "convnext_mini.arch")
    assert checked.diagnostics == []
    zoo = (ROOT / "specs/zoo/convnext_tiny.arch").read_text(encoding="utf-8")
    variant = (HERE / "specs" / "convnext_mini.arch").read_text(encoding="utf-8")
    block = zoo[zoo.index("block cnblock") : zoo.index("stem")]
    assert block in variant  # ConvNeXt-T's block, unchanged


def test_convnext_mini_trains_on_synthetic_images_and_beats_chance(tmp_path):
    checked = check_file(HERE / "specs" / "convnext_mini.arch")
    directory = compile_to(checked, tmp_path / "convnext_mini")
    # 400 images, 12 steps per epoch at the spec's batch 32
    rows = train(directory, tmp_path / "run", "--synthetic-per-class", 40, "--max-steps", 36)
    assert [int(r["step"]) for r in rows] == [12, 24, 36]
    losses = [float(r["train_loss"]) for r in rows]
    top1 = float(rows[-1]["val_error"])
    print(f"convnext_mini: train loss {losses[0]:.3f} -> {losses[-1]:.3f}; val top-1 {top1:.3f}")
    assert losses[-1] < losses[0] - 0.5
    assert top1 < CHANCE - 0.3  # 80 val images: chance's standard deviation is 0.034
