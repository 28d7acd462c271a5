"""The Keras trainer's run log: TensorBoard event files, --wandb and --mlflow (stand-ins
recording the calls, the packages being absent here), --no-tensorboard."""

import importlib.util
import shutil
import signal
import sys
from pathlib import Path

import pytest

pytest.importorskip("keras")
pytest.importorskip("tensorboard")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "logging_common"))
import event_files  # noqa: E402
from fake_trackers import fake_package, logged  # noqa: E402

# 40 synthetic images in batches of 8: 5 steps an epoch
TINY = ["--synthetic-per-class", "10", "--batch-size", "8", "--workers", "1", "--epochs", "2"]


@pytest.fixture
def sigint_kept():
    """The trainer installs a SIGINT handler: the test's is put back after it."""
    handler = signal.getsignal(signal.SIGINT)
    yield
    signal.signal(signal.SIGINT, handler)


@pytest.mark.parametrize("flag", ["wandb", "mlflow"])
def test_a_tracker_that_is_not_installed_is_one_line_and_exit_2(
    load, tmp_path, capsys, sigint_kept, flag
):
    if importlib.util.find_spec(flag) is not None:
        pytest.skip(f"{flag} is installed")
    out = tmp_path / "run"
    assert load("train").main([f"--{flag}", "--out", str(out)]) == 2
    assert capsys.readouterr().err == (
        f"error: --{flag}: the {flag} package is not installed (pip install {flag}); "
        f"run without --{flag}\n"
    )
    assert not out.exists()  # refused before the run folder is touched


def test_trackers_get_the_scalars_of_the_event_files_and_metrics_csv(
    load, tmp_path, monkeypatch, sigint_kept
):
    """Epoch 1, then epoch 2, then epoch 2 again from epoch 1's checkpoint with the
    trackers (3 steps per call): TensorBoard shows the last run's epoch 2 (the first
    one's purged), the trackers get its scalars."""
    out, first = tmp_path / "run", tmp_path / "epoch1.npz"
    argv = [*TINY, "--log-every", "2", "--out", str(out)]
    assert load("train").main([*argv, "--epochs", "1"]) == 0
    shutil.copy(out / "last.npz", first)
    assert load("train").main([*argv, "--resume"]) == 0
    calls = []
    for name in ("wandb", "mlflow"):
        monkeypatch.setitem(sys.modules, name, fake_package(name, calls))
    again = [*argv, "--resume", str(first), "--wandb", "--mlflow", "--steps-per-call", "3"]
    assert load("train").main(again) == 0
    acc = event_files.check_run(out)  # each step once; the windows add up to train_loss
    assert {"Conv2D", "MatMul"} <= event_files.graph_ops(acc)
    tracked = logged(calls, "wandb.init().log")
    assert tracked == logged(calls, "mlflow.log_metrics")
    assert sorted(tracked) == [8, 10]  # calls end at steps 8 and 10: 2 steps passed
    row = event_files.metrics_rows(out)[1]  # epoch 2's, to the last digit
    epoch = {tag: row[field] for field, tag in event_files.EPOCH_TAGS.items()}
    assert epoch.items() <= tracked[10].items()
    as_events = {
        tag: [(s, event_files.float32(v[tag])) for s, v in sorted(tracked.items()) if tag in v]
        for tag in {tag for v in tracked.values() for tag in v}
    }
    events = event_files.scalars(acc)
    assert as_events == {tag: [p for p in events[tag] if p[0] > 5] for tag in events}
    (init,) = [kw for path, _, kw in calls if path == "wandb.init"]
    assert init["dir"] == str(out) and init["config"]["log_every"] == 2
    assert calls[-2:] == [
        ("wandb.init().finish", (), {"exit_code": 0}),
        ("mlflow.end_run", (), {"status": "FINISHED"}),
    ]


def test_no_tensorboard_writes_no_events(load, tmp_path, sigint_kept):
    out = tmp_path / "run"
    flags = [*TINY, "--epochs", "1", "--max-steps", "1", "--no-tensorboard", "--out", str(out)]
    assert load("train").main(flags) == 0
    assert (out / "metrics.csv").exists() and not (out / "tensorboard").exists()
