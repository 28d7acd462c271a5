"""The Keras trainer's progress (progress.py): Keras's Progbar on a terminal, plain lines
in a log."""

import io
import re
import sys
from pathlib import Path

import pytest

pytest.importorskip("keras")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "logging_common"))
from terminal import Terminal  # noqa: E402


@pytest.fixture
def progress(load):
    """The progress module."""
    return load("progress")


def test_off_a_terminal_it_prints_a_line_per_interval(progress, monkeypatch):
    log = io.StringIO()
    monkeypatch.setattr("sys.stdout", io.StringIO())
    monkeypatch.setattr("sys.stderr", log)
    fields = {"loss": lambda: 0.75, "lr": lambda: 0.125}
    bar = progress.StepProgress(3, "epoch 2/2", fields, "step", 16, every_s=0.0)
    for step in (1, 2, 3):
        bar.update(step)
    bar.close()
    pattern = r"epoch 2/2  (\d)/3 \(\d+%\)  [\d.]+ step/s  loss 0\.75  lr 0\.125  \d+ img/s"
    lines = log.getvalue().splitlines()
    assert [re.fullmatch(pattern, line).group(1) for line in lines] == ["1", "2", "3"]


def test_on_a_terminal_the_progbar_shows_the_fields(progress, monkeypatch):
    tty = Terminal()
    monkeypatch.setattr("sys.stdout", tty)
    calls = []
    fields = {"loss": lambda: calls.append(1) or 1.5}
    bar = progress.StepProgress(4, "validate", fields, "batch", 8)
    bar.update(1)  # the first draw waits REDRAW_S
    bar.update(4)  # the end is always drawn
    bar.close()
    text = tty.getvalue()
    assert text.startswith("validate\n") and calls == [1]
    assert re.search(r"4/4\x1b\[0m .* - loss: 1\.5000 - img/s: \d+", text), text
    assert text.endswith("\n")
