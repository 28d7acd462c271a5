"""Read a run's TensorBoard event files back with TensorBoard's own reader, and the checks
both trainers' tests make of them against metrics.csv."""

import csv
import math
import sys
import types

import numpy as np

# TensorBoard's reader imports TensorFlow where it is installed, which crashes beside
# PyTorch: outside the Keras tests it uses its own stub of TensorFlow's file API (as the
# PyTorch trainer's writer does), which tf.summary cannot work with
if "tensorflow" not in sys.modules:
    sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf"))

from tensorboard.backend.event_processing import plugin_event_accumulator  # noqa: E402
from tensorboard.compat.proto import graph_pb2  # noqa: E402
from tensorboard.util import tensor_util  # noqa: E402

EPOCH_TAGS = {  # metrics.csv's fields -> tags (the trainers' run_logging.EPOCH_TAGS)
    "train_loss": "epoch/train_loss",
    "lr": "epoch/lr",
    "images_per_s": "epoch/images_per_s",
    "seconds": "epoch/seconds",
    "val_loss": "val/loss",
    "val_error": "val/top1_error",
    "val_top5_error": "val/top5_error",
}
STEP_TAGS = ("train/loss", "train/lr", "train/images_per_s")


def event_data(folder):
    """An EventAccumulator over OUT/tensorboard, loaded (orphaned events purged, as
    TensorBoard shows them)."""
    acc = plugin_event_accumulator.EventAccumulator(str(folder / "tensorboard"))
    return acc.Reload()


def plugin_tags(acc, plugin):
    """The tags of one TensorBoard plugin's data (scalars, graphs)."""
    tags = acc.Tags()["tensors"]
    return [t for t in tags if acc.SummaryMetadata(t).plugin_data.plugin_name == plugin]


def scalars(acc):
    """{tag: [(step, value), ...]} of every scalar (PyTorch's simple values and Keras's
    tensors both read as tensors here)."""
    return {
        tag: [(e.step, float(tensor_util.make_ndarray(e.tensor_proto))) for e in acc.Tensors(tag)]
        for tag in plugin_tags(acc, "scalars")
    }


def graph_ops(acc):
    """The op types of the model graph in the events."""
    (event,) = acc.Tensors("__run_graph__")
    graph = graph_pb2.GraphDef.FromString(tensor_util.make_ndarray(event.tensor_proto)[0])
    return {node.op for node in graph.node}


def metrics_rows(out):
    """metrics.csv as a list of {field: float}."""
    with open(out / "metrics.csv", newline="") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def float32(value):
    """value as the event files store it."""
    return float(np.float32(value))


def check_epochs(values, rows):
    """Each epoch's row of metrics.csv is in the events at its step, field for field."""
    steps = [int(r["step"]) for r in rows]
    for field, tag in EPOCH_TAGS.items():
        assert values[tag] == [(s, float32(r[field])) for s, r in zip(steps, rows, strict=True)]


def check_windows(values, rows, resumed):
    """The train/* points: each step once, in order, every epoch's last step among them,
    the epoch's lr; unless the run was resumed (a window then starts at the checkpoint),
    losses whose mean over each epoch's steps is its train_loss."""
    steps = [s for s, _ in values["train/loss"]]
    assert steps == sorted(set(steps)), steps
    assert all([s for s, _ in values[tag]] == steps for tag in STEP_TAGS)
    points, lrs = dict(values["train/loss"]), dict(values["train/lr"])
    first = 0
    for row in rows:
        last = int(row["step"])
        mine = [s for s in steps if first < s <= last]
        assert mine and mine[-1] == last, (first, last, mine)
        assert all(lrs[s] == float32(row["lr"]) for s in mine)
        widths = np.diff([first, *mine])
        mean = sum(w * points[s] for w, s in zip(widths, mine, strict=True)) / sum(widths)
        assert resumed or math.isclose(mean, row["train_loss"], rel_tol=1e-6), (mean, row)
        first = last
    assert all(v > 0 for _, v in values["train/images_per_s"])


def check_run(out, resumed=False):
    """OUT/tensorboard holds exactly metrics.csv's epochs (at their steps, to float32) and
    training points that add up to each epoch's train_loss; returns the accumulator."""
    acc = event_data(out)
    values = scalars(acc)
    rows = metrics_rows(out)
    assert set(values) == {*EPOCH_TAGS.values(), *STEP_TAGS}
    check_epochs(values, rows)
    check_windows(values, rows, resumed)
    return acc
