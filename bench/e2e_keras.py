"""Keras half of bench/end_to_end.py, run by it as a subprocess: one JSON line on stdout.

The generated Keras model's bare train step on in-memory tensors (4 distinct seeded batches,
cycled, already on the device): a tf.function of forward, cross-entropy on one-hot targets
from logits (the spec's label smoothing), tape gradients and the spec's optimizer, as the
trainer's step computes it but without tf.distribute, the per-step float(loss) or the feed.
Prints the seconds from the loop's start to the end of step --from-step and of step --steps.
TensorFlow only: never in a process that holds torch.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from harness import load_model_module  # noqa: E402


def parse_args(argv=None):
    """Flags; end_to_end.py passes all of them."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("model_dir", type=Path, help="a `archdsl compile --backend keras` folder")
    p.add_argument("--batch-size", type=int, required=True)
    p.add_argument("--from-step", type=int, required=True, help="end of the warm-up")
    p.add_argument("--steps", type=int, required=True, help="steps in all")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument(
        "--amp",
        action="store_true",
        help="as the trainer's --amp: mixed_bfloat16 on a GPU with bf16, else mixed_float16",
    )
    p.add_argument("--compile", action="store_true", help="XLA (jit_compile), as the trainer's")
    return p.parse_args(argv)


def amp_policy(args):
    """The trainer's --amp policy: mixed_bfloat16 on a GPU of compute capability 8.0 or
    later (native bf16, no loss scaling), else mixed_float16."""
    gpus = tf.config.list_physical_devices("GPU") if args.device == "cuda" else []
    details = tf.config.experimental.get_device_details(gpus[0]) if gpus else {}
    bf16 = details.get("compute_capability", (0, 0)) >= (8, 0)
    return "mixed_bfloat16" if bf16 else "mixed_float16"


def make_step(module, args):
    """(model, compiled step(x, y)) with the spec's optimizer (loss-scaled under --amp's
    float16)."""
    policy = amp_policy(args) if args.amp else None
    if policy is not None:
        keras.mixed_precision.set_dtype_policy(policy)
    keras.utils.set_random_seed(0)
    net = module.build_model()
    optimizer = module.build_optimizer(net)
    if policy == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    optimizer.build(net.trainable_variables)
    smoothing = module.TRAIN["loss"].get("label_smoothing", 0.0)

    @tf.function(jit_compile=args.compile)
    def step(x, y):
        with tf.GradientTape() as tape:
            logits = tf.cast(net(x, training=True), tf.float32)
            losses = keras.losses.categorical_crossentropy(
                tf.one_hot(y, module.NUM_CLASSES),
                logits,
                from_logits=True,
                label_smoothing=smoothing,
            )
            loss = tf.reduce_mean(losses)
            scaled = optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, net.trainable_variables)
        optimizer.apply(grads, net.trainable_variables)
        return loss

    return step


def memory_batches(module, args):
    """4 seeded (images, labels) batches as device tensors."""
    rng = np.random.default_rng(0)
    shape = (args.batch_size, *module.INPUT_SHAPE)
    return [
        (
            tf.constant(rng.standard_normal(shape, dtype=np.float32)),
            tf.constant(rng.integers(module.NUM_CLASSES, size=args.batch_size, dtype=np.int32)),
        )
        for _ in range(4)
    ]


def timed_loop(step, batches, args):
    """Seconds from the start to the end of step --from-step and of step --steps (each mark
    waits for its step's loss)."""
    marks = {}
    start = time.perf_counter()
    for done in range(1, args.steps + 1):
        loss = step(*batches[done % len(batches)])
        if done in (args.from_step, args.steps):
            loss.numpy()
            marks[done] = time.perf_counter() - start
    return marks[args.from_step], marks[args.steps]


def main() -> None:
    """Time the bare step and print its JSON line."""
    args = parse_args()
    if args.device == "cpu":
        tf.config.set_visible_devices([], "GPU")
    module = load_model_module(args.model_dir, "e2e_generated_keras")
    with tf.device("/gpu:0" if args.device == "cuda" else "/cpu:0"):
        step = make_step(module, args)
        batches = memory_batches(module, args)
        t_from, t_to = timed_loop(step, batches, args)
    versions = f"Keras {keras.__version__} on TensorFlow {tf.__version__}"
    threads = tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()
    print(json.dumps({"t_from": t_from, "t_to": t_to, "versions": versions, "threads": threads}))


if __name__ == "__main__":
    main()
