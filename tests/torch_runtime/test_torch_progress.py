"""The PyTorch trainer's progress (progress.py): tqdm on a terminal, plain lines in a log."""

import argparse
import io
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "logging_common"))
from terminal import Terminal  # noqa: E402


@pytest.fixture
def progress(load):
    """The progress module."""
    return load("progress")


def test_off_a_terminal_it_prints_a_line_per_interval_with_loss_lr_and_images(
    progress, monkeypatch
):
    log = io.StringIO()
    monkeypatch.setattr("sys.stderr", log)
    calls = []
    fields = {"loss": lambda: calls.append(1) or 2.5, "lr": lambda: 0.05}
    bar = progress.StepProgress(4, "epoch 1/2", fields, "step", 32, initial=1, every_s=0.0)
    bar.update(2)
    bar.update(3)
    bar.close()
    lines = log.getvalue().splitlines()
    pattern = r"epoch 1/2  (\d)/4 \((\d+)%\)  [\d.]+ step/s  loss 2\.5  lr 0\.05  \d+ img/s"
    assert [re.fullmatch(pattern, line).groups() for line in lines] == [
        ("2", "50"),
        ("3", "75"),
    ]
    assert calls == [1, 1] and "\r" not in log.getvalue()


def test_a_log_line_waits_for_its_interval_and_reads_no_field_before(progress, monkeypatch):
    log = io.StringIO()
    monkeypatch.setattr("sys.stderr", log)
    fields = {"loss": lambda: pytest.fail("read a field that is not printed")}
    bar = progress.StepProgress(4, "epoch 1/1", fields, "step", 8, every_s=3600.0)
    bar.update(1)
    quiet = progress.StepProgress(4, "epoch 1/1", fields, "step", 8, enabled=False)
    quiet.update(1)
    quiet.close()
    assert log.getvalue() == ""


def test_without_stderr_nothing_is_drawn(progress, monkeypatch):
    """`train.py 2>&-`: Python's sys.stderr is None."""
    monkeypatch.setattr("sys.stderr", None)
    fields = {"loss": lambda: pytest.fail("read a field with nowhere to draw")}
    bar = progress.StepProgress(4, "epoch 1/1", fields, "step", 8, every_s=0.0)
    bar.update(1)
    bar.close()
    assert bar.view is None


def test_on_a_terminal_tqdm_redraws_one_line_and_clears_it(progress, monkeypatch):
    tty = Terminal()
    monkeypatch.setattr("sys.stderr", tty)
    fields = {"loss": lambda: 1.25, "lr": lambda: 0.01}
    bar = progress.StepProgress(3, "epoch 1/1", fields, "step", 16)
    assert isinstance(bar.view, progress.tqdm)
    bar.view.mininterval = 0  # draw every update
    for step in (1, 2, 3):
        bar.update(step)
    assert bar.view.n == 3
    bar.close()
    text = tty.getvalue()
    assert "\n" not in text and text.count("\r") >= 4  # redrawn in place, then cleared
    assert re.search(r"epoch 1/1: 100%.*3/3 .*loss=1\.25, lr=0\.01, \d+ img/s", text)


@pytest.mark.parametrize(
    ("val_steps", "max_steps", "limit"),
    [(None, None, None), (None, 3, 3), (7, 3, 7), (2, None, 2)],
)
def test_validation_is_bounded_by_val_steps_else_max_steps(load, val_steps, max_steps, limit):
    args = argparse.Namespace(val_steps=val_steps, max_steps=max_steps)
    assert load("trainer_args").val_batch_limit(args) == limit


def test_a_metrics_row_without_val_images_still_loads(load):
    """Rows of a checkpoint an older trainer wrote have no val_images; other gaps are
    damage."""
    trainer_args = load("trainer_args")
    row = dict.fromkeys(load("metrics_log").FIELDS, 1.0)
    older = {k: v for k, v in row.items() if k != "val_images"}
    damaged = {k: v for k, v in row.items() if k != "val_loss"}
    assert trainer_args.is_row(row) and trainer_args.is_row(older)
    assert not trainer_args.is_row(damaged) and not trainer_args.is_row({**row, "x": 1.0})


def test_without_tqdm_the_trainer_says_so_in_one_line(outdir, run_command):
    """train.py's import of progress, tqdm hidden by a None entry in sys.modules (what an
    uninstalled package reads as)."""
    script = "import sys; sys.modules['tqdm'] = None; import progress"
    done = run_command([sys.executable, "-c", script], outdir)
    assert (done.returncode, done.stderr) == (2, "error: train.py needs tqdm: pip install tqdm\n")
