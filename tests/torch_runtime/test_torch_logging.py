"""The PyTorch trainer's run log: TensorBoard event files, --wandb and --mlflow (stand-ins
recording the calls, the packages being absent here), --no-tensorboard."""

import importlib.util
import shutil
import sys
from argparse import Namespace
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("tensorboard")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "logging_common"))
import event_files  # noqa: E402
from fake_trackers import fake_package, logged  # noqa: E402

# 40 synthetic images in batches of 8: 5 steps an epoch
TINY = ["--synthetic-per-class", "4", "--batch-size", "8", "--workers", "0", "--epochs", "2"]


@pytest.mark.parametrize("flag", ["wandb", "mlflow"])
def test_a_tracker_that_is_not_installed_is_one_line_and_exit_2(load, tmp_path, capsys, flag):
    if importlib.util.find_spec(flag) is not None:
        pytest.skip(f"{flag} is installed")
    out = tmp_path / "run"
    assert load("train").main([f"--{flag}", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"error: --{flag}: the {flag} package is not installed (pip install {flag}); "
        f"run without --{flag}\n"
    )
    assert not out.exists()  # refused before the run folder is touched


def test_a_tracker_that_cannot_start_is_one_line_and_exit_2(load, tmp_path, monkeypatch, capsys):
    calls = []
    wandb = fake_package("wandb", calls)
    monkeypatch.setattr(wandb, "init", lambda **kw: 1 / 0, raising=False)
    monkeypatch.setitem(sys.modules, "wandb", wandb)
    argv = [*TINY, "--wandb", "--no-tensorboard", "--out", str(tmp_path / "run")]
    assert load("train").main(argv) == 2
    assert capsys.readouterr().err == "error: --wandb: cannot start the run (division by zero)\n"


def test_trackers_get_the_scalars_of_the_event_files_and_metrics_csv(load, tmp_path, monkeypatch):
    """Epoch 1, then epoch 2, then epoch 2 again from epoch 1's checkpoint with the
    trackers: TensorBoard shows the last run's epoch 2 (the first one's purged), the
    trackers get its scalars."""
    out, first = tmp_path / "run", tmp_path / "epoch1.pt"
    argv = [*TINY, "--log-every", "2", "--out", str(out)]
    assert load("train").main([*argv, "--epochs", "1"]) == 0
    shutil.copy(out / "last.pt", first)
    assert load("train").main([*argv, "--resume"]) == 0
    calls = []
    for name in ("wandb", "mlflow"):
        monkeypatch.setitem(sys.modules, name, fake_package(name, calls))
    assert load("train").main([*argv, "--resume", str(first), "--wandb", "--mlflow"]) == 0
    acc = event_files.check_run(out)  # each step once; the windows add up to train_loss
    assert "aten::_convolution" in event_files.graph_ops(acc)
    tracked = logged(calls, "wandb.init().log")
    assert tracked == logged(calls, "mlflow.log_metrics")
    assert sorted(tracked) == [6, 8, 10]  # every 2 steps and the epoch's end
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


def test_no_tensorboard_and_a_missing_package_write_no_events(load, monkeypatch, capsys):
    run_logging = load("run_logging")
    opened = []
    args = Namespace(tensorboard=False, wandb=False, mlflow=False)
    assert run_logging.open_sinks(args, "TinyNet", lambda: opened.append(1)) == []
    assert capsys.readouterr().err == "" and opened == []
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if not installed
    args.tensorboard = True
    assert run_logging.open_sinks(args, "TinyNet", lambda: opened.append(1)) == []
    assert opened == [] and capsys.readouterr().err == (
        "warning: no TensorBoard event files: the tensorboard package is not installed "
        "(pip install tensorboard; --no-tensorboard silences this)\n"
    )
    flags = load("train").parse_args(["--no-tensorboard", "--log-every", "3"])
    assert (flags.tensorboard, flags.log_every, flags.wandb, flags.mlflow) == (
        False,
        3,
        False,
        False,
    )


WRITE_EVENTS = """
import sys, torch, tensorboard_log
sink = tensorboard_log.TensorBoardSink(sys.argv[1], 0)
sink.scalars({"train/loss": 1.5}, 1)
sink.graph(torch.nn.Conv2d(3, 4, 3), torch.zeros(1, 3, 8, 8))
sink.close("finished")
print("tensorflow" in sys.modules)
"""


@pytest.mark.slow
def test_the_event_writer_keeps_tensorflow_out_of_the_process(outdir, run_command, tmp_path):
    """TensorBoard imports TensorFlow where it is installed, which crashes beside PyTorch."""
    cmd = [sys.executable, "-c", WRITE_EVENTS, str(tmp_path)]
    result = run_command(cmd, outdir)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "False\n" and result.stderr == ""
