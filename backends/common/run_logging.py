"""What both trainers log beyond metrics.csv: TensorBoard, Weights & Biases, MLflow.

The same scalars go to every sink under the same tags, against the global optimizer
step (metrics.csv's `step`): every --log-every steps the training loss and images/s of
the steps since the previous point (`train/*`), and after each epoch its row of
metrics.csv (`epoch/*`, `val/*`). Only rank 0 logs. A sink is an object with
scalars(values, step), flush() and close(status), status one of EXIT_CODES.
"""

import importlib
import importlib.util
import os
import sys
import time

# the runtime beside this file (isort: split keeps one order wherever ruff runs)
# isort: split
from trainer_args import Interrupted, UsageError, integer

TENSORBOARD_DIR = "tensorboard"  # OUT/tensorboard: the event files
EPOCH_TAGS = {  # metrics.csv's fields -> tags
    "train_loss": "epoch/train_loss",
    "lr": "epoch/lr",
    "images_per_s": "epoch/images_per_s",
    "seconds": "epoch/seconds",
    "val_loss": "val/loss",
    "val_error": "val/top1_error",
    "val_top5_error": "val/top5_error",
}
STEP_TAGS = ("train/loss", "train/lr", "train/images_per_s")
TRACKERS = ("wandb", "mlflow")  # each the name of its flag and of its package
EXIT_CODES = {"finished": 0, "failed": 1, "killed": 130}  # a run's end, for wandb


def add_logging_flags(parser):
    """--log-every, --no-tensorboard, --wandb and --mlflow."""
    parser.add_argument(
        "--log-every",
        type=integer(1),
        default=10,
        metavar="STEPS",
        help="a point of train/loss, train/lr and train/images_per_s every STEPS "
        "optimizer steps (TensorBoard, --wandb, --mlflow)",
    )
    parser.add_argument(
        "--no-tensorboard",
        dest="tensorboard",
        action="store_false",
        help=f"write no TensorBoard event files (default: OUT/{TENSORBOARD_DIR})",
    )
    parser.add_argument(
        "--wandb",
        action="store_true",
        help="also log to Weights & Biases (project $WANDB_PROJECT or archdsl; "
        "WANDB_MODE=offline keeps it local)",
    )
    parser.add_argument(
        "--mlflow",
        action="store_true",
        help="also log to MLflow ($MLFLOW_TRACKING_URI, else ./mlruns)",
    )


def check_packages(args):
    """UsageError when --wandb or --mlflow asks for a package that is not installed."""
    for name in TRACKERS:
        if getattr(args, name) and importlib.util.find_spec(name) is None:
            raise UsageError(
                f"--{name}: the {name} package is not installed "
                f"(pip install {name}); run without --{name}"
            )


def warn(text):
    """One warning line on stderr."""
    print(f"warning: {text}", file=sys.stderr, flush=True)


def run_config(args):
    """The flags as plain values (paths as text), for the trackers' run settings."""
    plain = (bool, int, float, str, type(None))
    return {k: v if isinstance(v, plain) else str(v) for k, v in vars(args).items()}


class WandbSink:
    """A Weights & Biases run in OUT (wandb reads WANDB_MODE, WANDB_API_KEY, ...)."""

    def __init__(self, args, name):
        """Start the run."""
        self.wandb = importlib.import_module("wandb")
        self.run = self.wandb.init(
            project=os.environ.get("WANDB_PROJECT", "archdsl"),
            dir=str(args.out),
            name=name,
            config=run_config(args),
        )

    def scalars(self, values, step):
        """Log values at step."""
        self.run.log(values, step=step)

    def flush(self):
        """Nothing to do: wandb sends in the background."""

    def close(self, status):
        """Finish the run with the exit code of its end."""
        self.run.finish(exit_code=EXIT_CODES[status])


class MlflowSink:
    """An MLflow run (mlflow reads MLFLOW_TRACKING_URI, MLFLOW_EXPERIMENT_NAME, ...)."""

    def __init__(self, args, name):
        """Start the run and record the flags as its parameters."""
        self.mlflow = importlib.import_module("mlflow")
        self.mlflow.start_run(run_name=name)
        self.mlflow.log_params(run_config(args))

    def scalars(self, values, step):
        """Log values at step."""
        self.mlflow.log_metrics(values, step=step)

    def flush(self):
        """Nothing to do: mlflow writes each call."""

    def close(self, status):
        """End the run as FINISHED, FAILED or KILLED."""
        self.mlflow.end_run(status=status.upper())


def utf8_path(path):
    """Whether the whole of path is valid UTF-8 (not bytes read through surrogates)."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def open_sinks(args, name, tensorboard):
    """The sinks the flags ask for: tensorboard() (the backend's event-file writer)
    unless --no-tensorboard, the tensorboard package is missing or the run folder's
    path is not UTF-8 (a warning), then
    those of --wandb and --mlflow (one that cannot start is a UsageError)."""
    sinks = []
    if args.tensorboard and importlib.util.find_spec("tensorboard") is None:
        warn(
            "no TensorBoard event files: the tensorboard package is not installed "
            "(pip install tensorboard; --no-tensorboard silences this)"
        )
    elif args.tensorboard and not utf8_path(args.out):
        warn(
            "no TensorBoard event files: its writers take only UTF-8 file names, and "
            "the run folder's path is not (rename it; --no-tensorboard silences this)"
        )
    elif args.tensorboard:
        sinks.append(tensorboard())
    kinds = dict(zip(TRACKERS, (WandbSink, MlflowSink), strict=True))
    for flag, kind in kinds.items():
        if getattr(args, flag):
            try:
                sinks.append(kind(args, name))
            except Exception as err:  # noqa: BLE001 - a tracker's own errors, any kind
                why = str(err).strip().splitlines() or [type(err).__name__]
                raise UsageError(f"--{flag}: cannot start the run ({why[0]})") from None
    return sinks


def end_status(kind):
    """How a run ended, from the exception that ended it (None: it finished)."""
    if kind is None:
        return "finished"
    return "killed" if issubclass(kind, Interrupted | KeyboardInterrupt) else "failed"


class RunLog:
    """The trainer's scalars, fanned out to the sinks (none: every call does nothing)."""

    def __init__(self, sinks, every, loss_sum=0.0, seen=0, step=0):
        """Log every `every` steps, the first window starting at these epoch totals."""
        self.sinks, self.every = list(sinks), every
        self.window = (loss_sum, seen, step, time.perf_counter())

    def due(self, step, count):
        """Whether a training point is due after `count` steps ending at `step`."""
        return bool(self.sinks) and step // self.every > (step - count) // self.every

    def after_steps(self, loss_sum, seen, step, count, lr):
        """After `count` steps ending at `step`: a training point when one is due
        (loss_sum may be a device scalar and lr a function: both read only then)."""
        if self.due(step, count):
            self.train_point(float(loss_sum), seen, step, time.perf_counter(), lr())

    def train_point(self, loss_sum, seen, step, now, lr):
        """train/* at step: the mean loss and images/s since the window's start, which
        moves here (loss_sum and seen: the epoch's running totals)."""
        sum0, seen0, step0, then = self.window
        if seen == seen0 or step == step0:
            return
        self.window = (loss_sum, seen, step, now)
        loss = (loss_sum - sum0) / (seen - seen0)
        speed = (seen - seen0) / max(now - then, 1e-9)
        self.scalars(dict(zip(STEP_TAGS, (loss, lr, speed), strict=True)), step)

    def epoch(self, row, loss_sum, seen, end):
        """A finished epoch: the training point of its last steps (totals at `end`, the
        perf_counter time its training ended), then its row of metrics.csv at its
        step; the next window starts from zero."""
        if self.sinks:
            self.train_point(float(loss_sum), seen, row["step"], end, row["lr"])
            self.scalars(
                {tag: row[field] for field, tag in EPOCH_TAGS.items()}, row["step"]
            )
        self.window = (0.0, 0, row["step"], time.perf_counter())

    def scalars(self, values, step):
        """Send values (floats) to every sink."""
        values = {tag: float(v) for tag, v in values.items()}
        for sink in self.sinks:
            sink.scalars(values, step)

    def flush(self):
        """Get everything logged so far to disk (with each checkpoint)."""
        for sink in self.sinks:
            sink.flush()

    def close(self, status="finished"):
        """Close every sink (each once)."""
        sinks, self.sinks = self.sinks, []
        for sink in sinks:
            sink.close(status)

    def __enter__(self):
        """The log itself."""
        return self

    def __exit__(self, kind, error, trace):
        """Close the sinks with the run's end status."""
        self.close(end_status(kind))
