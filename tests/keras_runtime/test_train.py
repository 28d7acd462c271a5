"""The Keras trainer end to end, each run in its own process."""

import csv
import math
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("keras")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "logging_common"))
import event_files  # noqa: E402

FAST = ["--synthetic-per-class", "40", "--batch-size", "16", "--workers", "2"]
REPRODUCIBLE = ("epoch", "train_loss", "val_loss", "val_error", "val_top5_error", "lr")


def metrics(out):
    """metrics.csv as a list of {column: float}."""
    with open(out / "metrics.csv", newline="") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def reproducible(out):
    """The columns of metrics.csv that do not depend on timing."""
    return [[row[k] for k in REPRODUCIBLE] for row in metrics(out)]


def assert_ok(proc):
    """The run exited 0."""
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_synthetic_training_learns(run_train, tmp_path):
    """Also: off a terminal (captured) a line per step and per validation batch with
    --progress-every 0; --val-steps 1 validates 1 of the 2 batches of 16 (16 of 32 images),
    as metrics.csv and the epoch's line say; the start summary's activations."""
    flags = ("--epochs", "3", "--val-steps", "1", "--progress-every", "0")
    proc = run_train(*FAST, *flags, "--out", tmp_path)
    assert_ok(proc)
    rows = metrics(tmp_path)
    assert [row["epoch"] for row in rows] == [1, 2, 3]
    assert rows[-1]["train_loss"] < rows[0]["train_loss"] < math.log(4)
    assert rows[-1]["val_error"] < 0.5  # chance is 0.75
    assert "top-1 err" in proc.stdout and "img/s" in proc.stdout
    assert (tmp_path / "metrics.png").stat().st_size > 0
    assert [row["val_images"] for row in rows] == [16, 16, 16]
    assert proc.stdout.count("(val: the first 16 of 32 images)") == 3
    step = r"^epoch 3/3  (\d+)/10 \(\d+%\)  \S+ step/s  loss \S+  lr \S+  \d+ img/s$"
    check = r"^validate  (\d+)/1 \(100%\)  \S+ batch/s  \d+ img/s$"
    steps = re.findall(step, proc.stderr, re.M)
    assert steps and steps[-1] == "10" and steps == sorted(steps, key=int), proc.stderr
    assert re.findall(check, proc.stderr, re.M) == ["1"] * 3, proc.stderr
    memory = 99728 * 16 / 2**20  # fixtures/shape_table.py's bytes per example at batch 16
    line = f"activations: 21,860 values per example; {memory:,.1f} MiB in float32 at batch 16"
    assert line in proc.stdout.splitlines()
    assert "global batch 16 (1 replica); 4 classes" in proc.stdout


def test_two_devices_and_amp_and_ten_crop(run_train, tmp_path):
    """Also: --max-steps 18 bounds each validation to 18 batches (of 16 // 10 = 1 image
    with --ten-crop: 18 of the 32 images)."""
    proc = run_train(
        *FAST,
        *("--epochs", "2", "--max-steps", "18", "--devices", "2", "--amp", "--ten-crop"),
        *("--out", tmp_path),
    )
    assert_ok(proc)
    assert "2 replica(s)" in proc.stdout
    memory = 99728 * 8 / 2**20  # fixtures/shape_table.py's bytes per example, 8 per replica
    split = f"global batch 16 (2 replicas x 8, {memory:,.1f} MiB of activations each); 4 classes"
    assert split in proc.stdout
    rows = metrics(tmp_path)
    assert len(rows) == 2 and rows[-1]["val_error"] < 0.5
    assert [row["val_images"] for row in rows] == [18, 18]
    mismatch = run_train(*FAST, "--epochs", "3", "--resume", "--out", tmp_path)
    assert mismatch.returncode == 2 and "do not match" in mismatch.stderr


def write_folder(root, per_class, size=40):
    """A tiny ImageFolder: four classes of flat-coloured PNGs in train/ and val/."""
    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30)]
    for split, count in (("train", per_class), ("val", 2)):
        for c, colour in enumerate(colours):
            folder = root / split / f"class{c}"
            folder.mkdir(parents=True)
            for i in range(count):
                image = Image.new("RGB", (size + i, size), tuple(v - 5 * i for v in colour))
                image.save(folder / f"{i}.png")


def test_imagefolder_training(run_train, tmp_path):
    write_folder(tmp_path / "data", per_class=6)
    proc = run_train(
        "--data", tmp_path / "data", "--epochs", "2", "--batch-size", "8", "--out", tmp_path / "run"
    )
    assert_ok(proc)
    assert "24 train / 8 val images" in proc.stdout
    assert len(metrics(tmp_path / "run")) == 2


@pytest.mark.parametrize("damage", ["corrupt_file", "missing_class"])
def test_bad_data_exits_2_without_traceback(run_train, tmp_path, damage):
    data = tmp_path / "data"
    write_folder(data, per_class=2)
    if damage == "corrupt_file":
        bad = data / "train" / "class1" / "bad.png"
        bad.write_bytes(b"not a png")
    else:
        bad = data / "val" / "class3"
        for f in bad.iterdir():
            f.unlink()
        bad.rmdir()
    proc = run_train("--data", data, "--epochs", "1", "--out", tmp_path / "run")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and str(bad.name) in proc.stderr


def start_train(outdir, *args):
    """Start train.py without waiting for it."""
    cmd = [sys.executable, str(outdir / "train.py"), *map(str, args)]
    return subprocess.Popen(
        cmd, cwd=outdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def wait_for(path, proc, timeout=120):
    """Block until path exists (while proc runs)."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline
        time.sleep(0.02)


RESUMABLE = [*FAST, "--epochs", "5", "--seed", "3"]


@pytest.fixture(scope="module")
def full_run(outdir, tmp_path_factory):
    """The metrics of an uninterrupted run with RESUMABLE flags."""
    out = tmp_path_factory.mktemp("full")
    cmd = [sys.executable, str(outdir / "train.py"), *RESUMABLE, "--out", str(out)]
    assert_ok(subprocess.run(cmd, cwd=outdir, capture_output=True, text=True, timeout=240))
    return reproducible(out)


@pytest.mark.parametrize(
    ("sig", "code", "per_call"),
    [
        (signal.SIGKILL, -9, "1"),
        (signal.SIGINT, 130, "1"),
        pytest.param(signal.SIGINT, 130, "3", marks=pytest.mark.slow),
    ],
)
def test_interrupt_and_resume_reproduces_the_run(
    run_train, outdir, full_run, tmp_path, sig, code, per_call
):
    """A kill or Ctrl-C, then --resume: the metrics of the uninterrupted run (one step per
    call), also with 3 steps per call (Ctrl-C stops at the end of a call)."""
    flags = [*RESUMABLE, "--steps-per-call", per_call, "--out", tmp_path]
    proc = start_train(outdir, *flags)
    wait_for(tmp_path / "metrics.csv", proc)
    time.sleep(0.2)  # into the second epoch
    proc.send_signal(sig)
    assert proc.wait(timeout=60) == code
    assert len(metrics(tmp_path)) < 5
    assert_ok(run_train(*flags, "--resume"))
    assert reproducible(tmp_path) == full_run
    event_files.check_run(tmp_path, resumed=True)  # TensorBoard: metrics.csv's epochs


MIRRORED_STEP = """
import feed, keras, numpy as np, tensorflow as tf, train
devices = train.replica_devices("cpu", 2)
x = np.random.default_rng(0).normal(size=(7, 32, 32, 3)).astype("float32")
y = np.arange(7, dtype="int32") % 4
for jit in (False, True):
    for strategy in (train.make_strategy(devices[:1]), train.make_strategy(devices)):
        keras.utils.set_random_seed(0)
        with strategy.scope():
            net = keras.Sequential(
                [keras.Input((32, 32, 3)), keras.layers.GlobalAveragePooling2D(),
                 keras.layers.Dense(4)]
            )
            optimizer = keras.optimizers.SGD(0.5)
            optimizer.build(net.trainable_variables)
        step = train.make_train_step(strategy, net, optimizer, 0.1, jit)
        batches = feed.distribute(strategy, tf.data.Dataset.from_tensors((x, y)))
        loss = float(step(next(iter(batches))))
        evaluate = train.make_eval_step(strategy, net, jit)
        padded = tf.data.Dataset.from_tensors((x, y)).map(lambda *b: train.padded(b, 2))
        sums = evaluate(next(iter(feed.distribute(strategy, padded)))).numpy()
        weights = np.asarray(net.trainable_variables[0]).ravel()
        print(int(jit), strategy.num_replicas_in_sync, loss, *sums, *weights)
"""


def test_mirrored_and_xla_steps_equal_the_single_device_step(outdir):
    """The train and eval steps on 1 and 2 replicas, plain and XLA-compiled (XLA:CPU), give
    the same loss, sums and weights to float32 rounding (XLA fuses and reorders sums)."""
    proc = subprocess.run(
        [sys.executable, "-c", MIRRORED_STEP], cwd=outdir, capture_output=True, text=True
    )
    assert_ok(proc)
    lines = [line.split() for line in proc.stdout.strip().splitlines()[-4:]]
    assert [line[:2] for line in lines] == [["0", "1"], ["0", "2"], ["1", "1"], ["1", "2"]]
    plain = [float(v) for v in lines[0][2:]]
    assert plain[0] > 0 and plain[2] + plain[3] > 0  # a loss, some hits
    for line in lines[1:]:
        assert [float(v) for v in line[2:]] == pytest.approx(plain, rel=1e-5)
