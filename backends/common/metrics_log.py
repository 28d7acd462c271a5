"""Per-epoch metrics (metrics.csv, metrics.png) and atomic file writes."""

import csv
import os
import re
import tempfile
from pathlib import Path

FIELDS = (
    "epoch",
    "step",
    "lr",
    "train_loss",
    "val_loss",
    "val_error",
    "val_top5_error",
    "images_per_s",
    "seconds",
    "val_images",  # the validation images the val_ metrics cover (--val-steps)
)
OUTPUTS = ("metrics.csv", "metrics.png")
TEMP_SUFFIX = ".tmp"
UMASK = os.umask(0o022)
os.umask(UMASK)


def temp_file(path):
    """(fd, name) of a new empty file .NAME.XXXXXXXX.tmp in the folder of path."""
    folder = os.path.dirname(os.path.abspath(path))
    prefix = f".{os.path.basename(path)}."
    return tempfile.mkstemp(dir=folder, prefix=prefix, suffix=TEMP_SUFFIX)


def remove_stale_temps(folder, names):
    """Delete the temp files temp_file() made for these names in folder (unfinished saves)."""
    alternatives = "|".join(map(re.escape, names))
    pattern = re.compile(rf"\.(?:{alternatives})\.[a-z0-9_]+{re.escape(TEMP_SUFFIX)}")
    for entry in os.scandir(folder):
        if pattern.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
            os.unlink(entry.path)


def atomic_write(path, write_fn, binary=True):
    """Call write_fn(file) on a temp file in path's folder, fsync it, then rename it to path."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fd, tmp = temp_file(path)
    try:
        os.chmod(tmp, 0o666 & ~UMASK)
        with os.fdopen(
            fd, "wb" if binary else "w", newline=None if binary else ""
        ) as f:
            write_fn(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def read_csv(path):
    """Read a metrics.csv back as a list of {field: string} rows."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


class MetricsLog:
    """The rows of OUT/metrics.csv, one per epoch; missing fields are left blank."""

    def __init__(self, out_dir, rows=()):
        """Log into out_dir, starting from earlier rows (e.g. from a checkpoint)."""
        self.out_dir = Path(out_dir)
        self.rows = [dict(r) for r in rows]

    def append(self, **row):
        """Add one epoch's row (a subset of FIELDS)."""
        unknown = set(row) - set(FIELDS)
        if unknown:
            raise ValueError(
                f"unknown metrics fields {sorted(unknown)}; known: {FIELDS}"
            )
        self.rows.append(row)

    def write(self, rows=None):
        """Write OUT/metrics.csv atomically (replacing the rows first if given); full precision."""
        if rows is not None:
            self.rows = [dict(r) for r in rows]

        def write_rows(f):
            writer = csv.DictWriter(f, fieldnames=FIELDS, restval="")
            writer.writeheader()
            writer.writerows(self.rows)

        atomic_write(self.out_dir / "metrics.csv", write_rows, binary=False)

    def plot(self, png_path=None):
        """Draw loss and top-1/top-5 error curves per epoch (default OUT/metrics.png; Agg)."""
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator

        fig = Figure(figsize=(10, 4), layout="constrained")
        loss_ax, err_ax = fig.subplots(1, 2)
        self.curves(loss_ax, ("train_loss", "val_loss"), 1.0)
        self.curves(err_ax, ("val_error", "val_top5_error"), 100.0)
        loss_ax.set(xlabel="epoch", ylabel="loss", title="loss")
        err_ax.set(xlabel="epoch", ylabel="error (%)", title="validation error")
        for ax in (loss_ax, err_ax):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        path = png_path or self.out_dir / "metrics.png"
        atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))

    def curves(self, ax, keys, scale):
        """Plot the given fields against the epoch, skipping blank values."""
        for key in keys:
            points = [
                (r["epoch"], scale * float(r[key]))
                for r in self.rows
                if r.get(key, "") != ""
            ]
            if points:
                ax.plot(*zip(*points, strict=True), marker=".", label=key)
                ax.legend()
        ax.grid(alpha=0.3)
