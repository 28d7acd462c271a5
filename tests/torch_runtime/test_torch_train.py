"""train.py end to end: learning, exact resume after SIGKILL and Ctrl-C, flags, DDP."""

import csv
import os
import re
import signal
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "logging_common"))
import event_files  # noqa: E402

# 500 synthetic images, 20 steps per epoch
BASE = ("--synthetic-per-class", 50, "--epochs", 3, "--batch-size", 25, "--seed", 5, "--workers", 0)
EXACT = ["epoch", "step", "lr", "train_loss", "val_loss", "val_error", "val_top5_error"]


def metrics(out):
    """The deterministic columns of OUT/metrics.csv (timings left out)."""
    lines = (out / "metrics.csv").read_text().splitlines()
    header = lines[0].split(",")
    keep = [header.index(k) for k in EXACT]
    return [[row.split(",")[i] for i in keep] for row in lines[1:]]


@pytest.fixture(scope="module")
def reference(run_train, tmp_path_factory):
    """An uninterrupted run of BASE: (its OUT folder, its stdout)."""
    out = tmp_path_factory.mktemp("reference")
    result = run_train(*BASE, "--out", out)
    assert result.returncode == 0, result.stderr
    return out, result.stdout


def test_training_lowers_the_loss_and_beats_chance(reference):
    out, stdout = reference
    rows = metrics(out)
    assert [r[0] for r in rows] == ["1", "2", "3"] and rows[-1][1] == "60"
    train_loss = [float(r[3]) for r in rows]
    top1, top5 = float(rows[-1][5]), float(rows[-1][6])
    assert train_loss[-1] < train_loss[0] - 0.3
    assert top1 < 0.5  # chance: 0.9
    assert top5 <= top1
    assert re.search(r"epoch 3/3  step 60  lr \S+  train_loss \S+  val_loss \S+  top-1 err", stdout)
    assert (out / "metrics.png").stat().st_size > 1000
    ckpt = torch.load(out / "last.pt", weights_only=True)  # no pickled code needed
    assert ckpt["state"] == {"epoch": 3, "batches_done": 0, "global_step": 60}
    assert len(ckpt["metrics"]) == 3 and set(ckpt["rng"]) == {"python", "numpy", "torch", "cuda"}


def test_event_files_hold_the_metrics_and_the_graph(reference):
    acc = event_files.check_run(reference[0])  # every epoch's row; windows add up
    steps = [s for s, _ in event_files.scalars(acc)["train/loss"]]
    assert steps == [10, 20, 30, 40, 50, 60]  # --log-every 10; epochs end at 20, 40, 60
    assert {"aten::_convolution", "aten::linear"} <= event_files.graph_ops(acc)


def resumed_from(stdout):
    """(epoch, step) from the header of a resumed run."""
    epoch, step = re.search(r"from epoch (\d+), step (\d+)", stdout).groups()
    return int(epoch), int(step)


def test_sigkill_mid_epoch_then_resume_reproduces_the_run(
    reference, start_train, run_train, tmp_path
):
    out = tmp_path / "run"
    proc = start_train(*BASE, "--out", out, "--save-every", 7)
    deadline = time.monotonic() + 120
    while not (out / "last.pt").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    result = run_train(*BASE, "--out", out, "--resume", "--workers", 1)
    assert result.returncode == 0, result.stderr
    epoch, step = resumed_from(result.stdout)
    assert step % 7 == 0 and step % 20 != 0 and step < 60  # resumed inside an epoch
    assert metrics(out) == metrics(reference[0])
    event_files.check_run(out, resumed=True)  # the killed run's later events purged


@pytest.mark.slow  # the default run kills mid-epoch (above)
def test_sigkill_between_epochs_then_resume_reproduces_the_run(
    reference, start_train, run_train, tmp_path
):
    out = tmp_path / "run"
    proc = start_train(*BASE, "--out", out)
    for line in proc.stdout:
        if line.startswith("epoch 1/3"):
            break
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert len(metrics(out)) in (1, 2)
    result = run_train(*BASE, "--out", out, "--resume", out / "last.pt")
    assert result.returncode == 0, result.stderr
    assert resumed_from(result.stdout) in ((2, 20), (3, 40))
    assert metrics(out) == metrics(reference[0])


def test_ctrl_c_checkpoints_exits_130_and_resumes(reference, start_train, run_train, tmp_path):
    out = tmp_path / "run"
    proc = start_train(*BASE, "--out", out)
    assert proc.stdout.readline().startswith("TinyNet (tiny.arch)")
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert f"interrupted: saved {out / 'last.pt'}" in stderr and "Traceback" not in stderr
    result = run_train(*BASE, "--out", out, "--resume")
    assert result.returncode == 0, result.stderr
    assert metrics(out) == metrics(reference[0])


def test_ten_crop_changes_validation_only(run_train, tmp_path):
    flags = ("--max-steps", 3, "--amp", "--channels-last", "--synthetic-per-class", 10)
    plain = run_train(*flags, "--out", tmp_path / "plain", "--workers", 0)
    ten = run_train(*flags, "--out", tmp_path / "ten", "--workers", 0, "--ten-crop")
    assert plain.returncode == ten.returncode == 0, plain.stderr + ten.stderr
    assert "warning: --amp needs CUDA" in plain.stderr
    a, b = metrics(tmp_path / "plain"), metrics(tmp_path / "ten")
    assert len(a) == len(b) == 1 and a[0][:4] == b[0][:4] == ["1", "3", "0.05", a[0][3]]
    assert a[0][4] != b[0][4]  # val_loss differs: 10 crops averaged


def test_resume_without_checkpoint_is_a_clean_error(run_train, tmp_path):
    result = run_train("--out", tmp_path / "none", "--resume")
    assert result.returncode == 2
    assert "no checkpoint to resume from" in result.stderr and "Traceback" not in result.stderr


WRAPPER = """
import os, sys
import torch, torch.distributed as dist
import train
net = train.train(train.parse_args(sys.argv[1:]))
torch.save(net.state_dict(), f"rank{os.environ['RANK']}.pt")
dist.destroy_process_group()
"""


def test_torchrun_two_processes_end_with_identical_weights(assemble_into, run_command, tmp_path):
    run_dir = assemble_into(tmp_path / "ddp")
    (run_dir / "ddp_train.py").write_text(WRAPPER)
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    args = ["--synthetic-per-class", 20, "--epochs", 2, "--workers", 0, "--out", "out"]
    cmd = [torchrun, "--standalone", "--nproc_per_node", "2", "ddp_train.py", *map(str, args)]
    result = run_command(cmd, run_dir, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "2 process(es)" in result.stdout and result.stdout.count("epoch 2/2") == 1
    ranks = [torch.load(run_dir / f"rank{r}.pt") for r in (0, 1)]
    saved = torch.load(run_dir / "out" / "last.pt", weights_only=True)["model"]
    assert list(ranks[0]) == list(ranks[1]) == list(saved)
    for name in ranks[0]:
        assert torch.equal(ranks[0][name], ranks[1][name]), name
        assert torch.equal(ranks[0][name], saved[name]), name
    assert metrics(run_dir / "out")[-1][:2] == ["2", "12"]  # 100 images a rank, 16 a batch: 6 steps
    assert len(list((run_dir / "out" / "tensorboard").iterdir())) == 1  # rank 0's events only
    event_files.check_run(run_dir / "out", resumed=True)  # train/*: rank 0's batches


@pytest.mark.slow
def test_compile_trains(run_train, tmp_path):
    flags = ("--compile", "--max-steps", 2, "--synthetic-per-class", 5, "--workers", 0)
    result = run_train(*flags, "--out", tmp_path / "c", timeout=600)
    assert result.returncode == 0, result.stderr
    assert [r[:2] for r in metrics(tmp_path / "c")] == [["1", "1"], ["2", "2"]]  # 1 step an epoch


def test_a_log_shows_steps_and_validation_and_val_steps_bounds_validation(run_train, tmp_path):
    """Off a terminal (captured), a line per step and per validation batch; --val-steps 3
    validates 3 of the 5 batches of 4 (12 of 20 images) and metrics.csv and the epoch's
    line say so; the start summary gives the activations at the run's batch."""
    flags = ("--synthetic-per-class", 10, "--batch-size", 4, "--epochs", 1, "--max-steps", 2)
    out = tmp_path / "run"
    result = run_train(
        *flags, "--val-steps", 3, "--progress-every", 0, "--workers", 0, "--out", out
    )
    assert result.returncode == 0, result.stderr
    steps = re.findall(
        r"^epoch 1/1  (\d+)/25 \(\d+%\)  \S+ step/s  loss \S+  lr 0\.05  \d+ img/s$",
        result.stderr,
        re.M,
    )
    checks = re.findall(
        r"^validate  (\d+)/3 \(\d+%\)  \S+ batch/s  \d+ img/s$", result.stderr, re.M
    )
    assert steps == ["1", "2"] and checks == ["1", "2", "3"], result.stderr
    (row,) = list(csv.DictReader((out / "metrics.csv").open()))
    assert row["val_images"] == "12"
    assert "(val: the first 12 of 20 images)" in result.stdout
    memory = 315432 * 4 / 2**20  # fixtures/shape_table.py's bytes per example at batch 4
    assert (
        f"activations: 75,786 values per example; {memory:,.1f} MiB in float32 at batch 4\n"
        in result.stdout
    )
    assert "global batch 4 (1 replica); 10 classes" in result.stdout
