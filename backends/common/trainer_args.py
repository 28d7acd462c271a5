"""What both trainers share: flags, their checks, the run folder, checkpoint structure.

Every problem a user can cause (a flag, the run folder, a checkpoint) becomes one line on
stderr and exit status 2, never a traceback.
"""

import argparse
import errno
import math
import os
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: the run folder is not locked
    fcntl = None

# the runtime beside this file (isort: split keeps one order wherever ruff runs)
# isort: split
from imagefolder import ImageFolderDataset, scan_imagefolder
from metrics_log import FIELDS, OUTPUTS, remove_stale_temps, temp_file
from npzcheck import printable
from progress_lines import LOG_EVERY_S
from synthetic import SyntheticImages
from textdata import text_sets

SEED_MAX = 2**32 - 1
COUNT_MAX = 2**63 - 1  # epochs, steps, images: anything larger is a damaged checkpoint
FLOAT_MAX = 3.4e38  # about float32's largest: a larger setting overflows in a step
WORKERS_MAX = 256
# synthetic images in all: each epoch draws a permutation of them
SYNTHETIC_MAX = 10**7
DEVICES_MAX = 64
LOCK_FILE = ".lock"
PROBE_FILE = "write-probe"
PROGRESS = ("epoch", "batches_done", "global_step")
HINT = "end the spec with global_avgpool |> flatten |> dense(N)"


def is_text_model(spec):
    """Whether the model reads token ids (`tokens L of V`): a text model."""
    return getattr(spec, "INPUT_VOCAB", None) is not None


class UsageError(Exception):
    """A bad flag, device or checkpoint, reported as one line without a traceback."""


class Interrupted(Exception):
    """Ctrl-C after the checkpoint was saved."""


def error_line(err):
    """The one-line message of an error, also of one a DataLoader worker re-raised."""
    text = str(err).strip()
    # a worker's error holds its traceback, ending in "imagefolder.DataError: MESSAGE"
    if text.startswith("Caught "):
        text = text.split("DataError: ", 1)[-1]
    return printable(text)


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line without the usage block."""

    def error(self, message):
        """Print `train.py: error: MESSAGE (see --help)` and exit 2."""
        self.exit(2, f"{self.prog}: error: {printable(message)} (see --help)\n")


def integer(low, high=COUNT_MAX, wanted=None):
    """An argparse type: an integer from low to high (`wanted` describes it in errors)."""
    if wanted is None:
        whole = f"an integer from {low} to {high}"
        wanted = whole if high < COUNT_MAX else f"an integer >= {low}"

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected {wanted}, not {text!r}")
        return value

    return parse


device_count = integer(1, DEVICES_MAX, f"at least one device and at most {DEVICES_MAX}")


def learning_rate(text):
    """An argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, not {text!r}")
    return value


def seconds(text):
    """An argparse type: a finite number of seconds >= 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, not {text!r}")
    return value


def val_batch_limit(args):
    """Validation batches per pass: --val-steps, else --max-steps (a short run validates
    about as long as it trains), else None (all of them)."""
    return args.val_steps if args.val_steps is not None else args.max_steps


def val_note(row, total):
    """`  (val: the first N of M images)` for the epoch's line when validation stopped
    early; empty when it covered the whole val set."""
    n = row["val_images"]
    return "" if n == total else f"  (val: the first {n:,} of {total:,} images)"


def common_parser(spec, checkpoint):
    """A parser with the flags of both trainers; defaults come from the spec's train section."""
    p = OneLineParser(description=f"Train {spec.MODEL_NAME} from {spec.SPEC}.")
    p.add_argument(
        "--data",
        type=Path,
        help="ImageFolder root: DIR/train/<class>/*, DIR/val/...; for a text model "
        "DIR/train/<label>/*.txt, DIR/val/... or DIR/train.jsonl, DIR/val.jsonl",
    )
    p.add_argument(
        "--synthetic-per-class",
        type=integer(1),
        default=100,
        metavar="N",
        help="without --data: synthetic training images (or texts) per class "
        "(val: N // 5)",
    )
    p.add_argument("--epochs", type=integer(1), default=spec.TRAIN["epochs"])
    p.add_argument(
        "--batch-size",
        type=integer(1),
        default=spec.TRAIN["batch"],
        help="global batch",
    )
    p.add_argument(
        "--lr", type=learning_rate, help="initial learning rate (default: the spec's)"
    )
    p.add_argument(
        "--max-steps",
        type=integer(1),
        help="stop after this many optimizer steps in all",
    )
    p.add_argument(
        "--val-steps",
        type=integer(1),
        metavar="N",
        help="validation batches per pass (default: all; with --max-steps, at most "
        "--max-steps batches); the metrics say how many images they cover",
    )
    p.add_argument(
        "--progress-every",
        type=seconds,
        default=LOG_EVERY_S,
        metavar="S",
        help="off a terminal: seconds between two progress lines",
    )
    p.add_argument(
        "--save-every",
        type=integer(0),
        default=0,
        metavar="STEPS",
        help="also checkpoint every STEPS optimizer steps (0: once per epoch)",
    )
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--seed", type=integer(0, SEED_MAX), default=0)
    p.add_argument(
        "--out",
        type=Path,
        default=Path("runs"),
        help="the run folder (locked while a run uses it)",
    )
    p.add_argument(
        "--resume",
        nargs="?",
        const="",
        metavar="PATH",
        help=f"continue from a checkpoint (default: OUT/{checkpoint})",
    )
    p.add_argument(
        "--ten-crop", action="store_true", help="validate on 10 crops per image"
    )
    p.add_argument(
        "--workers",
        type=integer(0, WORKERS_MAX),
        default=min(4, os.cpu_count() or 1),
        help="data loading processes (PyTorch) or threads (Keras)",
    )
    return p


BF16_CAPABILITY = (8, 0)  # Ampere: bf16 tensor cores; where the GPU fast defaults start


def check_precision(args):
    """UsageError for --fp32 with --amp (both trainers' precision flags)."""
    if args.fp32 and args.amp:
        raise UsageError("--fp32 and --amp contradict each other; pass one of them")


def check_trainable(spec):
    """UsageError unless the model ends in class scores trained with cross-entropy."""
    shape = tuple(getattr(spec, "OUTPUT_SHAPE", (spec.NUM_CLASSES,)))
    if len(shape) != 1:
        raise UsageError(
            f"the model outputs a map of shape {shape}; the classification trainer needs "
            f"a vector of class scores (hint: {HINT})"
        )
    loss = spec.TRAIN["loss"]["name"]
    if loss != "cross_entropy":
        raise UsageError(f"loss {loss!r}: this trainer has cross_entropy")
    if is_text_model(spec) and spec.TRAIN["augment"]:
        raise UsageError(
            "the spec augments images, but its model reads token ids; "
            "remove `augment` from its train section"
        )


def parameters_text(total, trained):
    """`N parameters`, and how many of them train when the spec freezes some."""
    frozen = f" ({trained:,} trained, the rest frozen)" if trained != total else ""
    return f"{total:,} parameters{frozen}"


def synthetic_sets(num_classes, size, per_class):
    """(train, val) synthetic sets of per_class and per_class // 5 (at least 1) images per
    class; UsageError when they cannot be made."""
    if per_class * num_classes > SYNTHETIC_MAX:
        raise UsageError(
            f"--synthetic-per-class {per_class}: {per_class * num_classes:,} images of "
            f"{num_classes} classes; at most {SYNTHETIC_MAX:,} (pass --data DIR for more)"
        )
    try:
        return (
            SyntheticImages(num_classes, size, "train", per_class),
            SyntheticImages(num_classes, size, "val", max(1, per_class // 5)),
        )
    except ValueError as err:
        raise UsageError(f"{err}; pass --data DIR") from None


def datasets(spec, args, size):
    """(train, val, class names) of (uint8 HxWx3, label): ImageFolder or the synthetic images
    of `size` (H, W); for a text model, of (int64 token ids, label): text files or the
    procedural texts (class names [] where the data has none)."""
    if is_text_model(spec):
        return text_sets(
            args.data,
            spec.INPUT_SHAPE[0],
            spec.INPUT_VOCAB,
            spec.NUM_CLASSES,
            args.synthetic_per_class,
        )
    if args.data is not None:
        train, val, classes = scan_imagefolder(args.data, spec.NUM_CLASSES)
        return ImageFolderDataset(train), ImageFolderDataset(val), classes
    train, val = synthetic_sets(spec.NUM_CLASSES, size, args.synthetic_per_class)
    return train, val, []


def claim_run_folder(out, checkpoint):
    """Create and lock OUT for this process, check it is writable, drop unfinished saves.

    Returns the lock's descriptor, to keep open for the whole run (the lock goes with the
    process, also when it is killed).
    """
    try:
        out.mkdir(parents=True, exist_ok=True)
        lock = lock_folder(out)
        fd, probe = temp_file(out / PROBE_FILE)
        os.close(fd)
        os.unlink(probe)
        if lock is not None:
            remove_stale_temps(out, (checkpoint, *OUTPUTS, PROBE_FILE))
    except OSError as err:
        why = (
            "a file, not a folder" if isinstance(err, FileExistsError) else err.strerror
        )
        raise UsageError(
            f"--out {out}: cannot write the run there ({why or err}); pass another --out"
        ) from None
    return lock


def lock_folder(out):
    """An open OUT/.lock holding this process's lock and pid; None where locks are missing."""
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(out / LOCK_FILE, flags, 0o666)
    if fcntl is None:
        os.close(fd)
        return None
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        holder = os.pread(fd, 20, 0).decode("ascii", "replace").strip()
        os.close(fd)
        if err.errno not in (errno.EACCES, errno.EAGAIN):
            return None  # a file system without locks
        by = f"pid {holder}" if holder.isdigit() else "another process"
        raise UsageError(
            f"--out {out}: the run folder is in use by another training ({by}); "
            "wait for it to end or pass another --out"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def resume_path(args, checkpoint):
    """The checkpoint --resume names (default OUT/checkpoint), None without --resume."""
    if args.resume is None:
        return None
    path = Path(args.resume) if args.resume else args.out / checkpoint
    if not path.is_file():
        raise UsageError(
            f"{path}: no checkpoint to resume from; run without --resume first"
        )
    return path


def value_kind(value):
    """The kind of a plain value when comparing structures: numbers (floats and ints up to
    COUNT_MAX in size) are one kind."""
    if value is None or isinstance(value, bool):
        return repr(value) if value is None else "bool"
    if isinstance(value, float) or (type(value) is int and abs(value) <= COUNT_MAX):
        return "number"
    if isinstance(value, list | tuple):
        return "list"
    return type(value).__name__


def layout_problem(saved, fresh, where):
    """Where saved differs from fresh in keys, lengths, kinds of values or settings (texts
    and flags must be equal; numbers may differ but must be float32 numbers unless equal
    to fresh's, as an initial inf); None if alike."""
    if value_kind(saved) != value_kind(fresh):
        return f"{where} is a {value_kind(saved)}, not a {value_kind(fresh)}"
    if isinstance(fresh, str | bool) and saved != fresh:
        return f"{where} is {saved!r}, not {fresh!r}"
    if value_kind(fresh) == "number" and not (
        abs(saved) <= FLOAT_MAX or saved == fresh
    ):
        return f"{where} is out of range"
    if isinstance(fresh, dict):
        if set(saved) != set(fresh):
            return f"{where} does not have the entries {', '.join(map(str, fresh))}"
        pairs = [(saved[k], fresh[k], f"{where}.{k}") for k in fresh]
    elif isinstance(fresh, list | tuple):
        if len(saved) != len(fresh):
            return f"{where} has {len(saved)} items, not {len(fresh)}"
        pairs = [
            (s, f, f"{where}[{i}]")
            for i, (s, f) in enumerate(zip(saved, fresh, strict=True))
        ]
    else:
        return None
    return next(filter(None, (layout_problem(*pair) for pair in pairs)), None)


def is_count(value):
    """Whether value is an int from 0 to COUNT_MAX (not a bool)."""
    return type(value) is int and 0 <= value <= COUNT_MAX


def progress_problem(ckpt, keys):
    """What is wrong with the parts of a checkpoint both trainers write; None if nothing."""
    if not isinstance(ckpt, dict):
        return f"a {type(ckpt).__name__}, not a dict"
    common = ("model_name", "state", "train_loss_sum", "train_seen", "metrics")
    missing = [k for k in (*common, "scheduler", *keys) if k not in ckpt]
    if missing:
        return f"no {', '.join(missing)}"
    state, rows = ckpt["state"], ckpt["metrics"]
    if not isinstance(ckpt["model_name"], str):
        return "model_name is not a string"
    if not isinstance(state, dict) or set(state) != set(PROGRESS):
        return f"state is not a dict of {', '.join(PROGRESS)}"
    wrong = [k for k in PROGRESS if not is_count(state[k])]
    if wrong:
        return f"state.{wrong[0]} is not an integer >= 0"
    if (
        not is_count(ckpt["train_seen"])
        or value_kind(ckpt["train_loss_sum"]) != "number"
    ):
        return "train_seen or train_loss_sum is not a number"
    if not isinstance(rows, list) or not all(is_row(r) for r in rows):
        return f"metrics is not a list of rows of {', '.join(FIELDS)}"
    return None


def is_row(row):
    """Whether row is one epoch's metrics: every field a number (an older trainer's row
    has no val_images)."""
    return (
        isinstance(row, dict)
        and set(FIELDS) - {"val_images"} <= set(row) <= set(FIELDS)
        and all(value_kind(v) == "number" for v in row.values())
    )


def check_checkpoint(ckpt, path, model_name, keys, fresh_scheduler):
    """UsageError unless ckpt has the structure a trainer's save() writes.

    keys: the backend's own entries; fresh_scheduler: the new schedule's state_dict() (or
    None), which the checkpoint's must match in entries and kinds of values.
    """
    problem = progress_problem(ckpt, keys)
    if problem is None and ckpt["model_name"] != model_name:
        raise UsageError(
            f"{path}: checkpoint of {ckpt['model_name']}, not {model_name}"
        )
    if problem is None:
        problem = layout_problem(ckpt["scheduler"], fresh_scheduler, "scheduler")
    if problem is not None:
        raise UsageError(f"{path}: not a checkpoint of this trainer ({problem})")
