"""TensorFlow ops per forward + backward of the Keras runtime's LocalResponseNorm.

The layer's call and its gradient traced by tf.function at AlexNet's two LRN inputs; ops that
only name, shape or feed tensors (Placeholder, Const, Identity, NoOp, Shape, Reshape, Pack)
are left out. Also the median ms per traced forward + backward. --runtime points at another
copy of backends/keras/runtime, e.g. an older commit's, to compare:

    git show REV:backends/keras/runtime/layers.py > /tmp/old/layers.py
    cp backends/keras/runtime/torch_names.py /tmp/old/
    .venv/bin/python bench/keras_lrn_ops.py --runtime /tmp/old
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

RUNTIME = Path(__file__).resolve().parents[1] / "backends" / "keras" / "runtime"
PLUMBING = {"Placeholder", "Const", "Identity", "NoOp", "Shape", "Reshape", "Pack"}
LAYERS = {"conv1": (96, 55), "conv2": (256, 27)}  # channels, side


def step(tf, layer):
    """The layer's output gradient against its input, as one traceable function."""

    def forward_backward(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
        return tape.gradient(y, x, output_gradients=tf.ones_like(y))

    return tf.function(forward_backward)


def main() -> None:
    """Print the op count, the op kinds and ms per forward + backward for each LRN."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runtime", type=Path, default=RUNTIME)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    sys.path.insert(0, str(args.runtime))
    import layers
    import tensorflow as tf

    for name, (channels, side) in LAYERS.items():
        run = step(tf, layers.LocalResponseNorm(5, 1e-4, 0.75, 2.0))
        x = tf.nn.relu(tf.random.stateless_normal((args.batch, side, side, channels), (0, 0)))
        graph = run.get_concrete_function(tf.TensorSpec(x.shape)).graph
        kinds = [op.type for op in graph.get_operations() if op.type not in PLUMBING]
        times = []
        for _ in range(args.repeats + 1):  # the first is warm-up
            start = time.perf_counter()
            run(x).numpy()
            times.append((time.perf_counter() - start) * 1e3)
        ms = statistics.median(times[1:])
        print(f"{name} {len(kinds):3d} ops  {ms:8.2f} ms  {collections.Counter(kinds)}")


if __name__ == "__main__":
    main()
