"""Train-step time of archdsl's generated Keras model against the seed's hand-written Keras code.

One run, one pair: the model.py compiled from specs/variants/seed000_keras_functional.arch vs
seed 000's functional-API AlexNet as tests/conformance/seed_fixtures/seed000.py builds it, with
logits out (its last Dense loses the softmax, as the generated model's does). Both get
the same parameter count (checked), the same weights (the baseline gets a copy of the generated
model's), the same optimizer class, the same batches (seeded random images and labels) and the
same train step, called alternately (A B A B ...) so drift hits both alike. A step is forward,
SparseCategoricalCrossentropy(from_logits=True), gradients and the optimizer update; the figure
is the median over --steps after --warmup; the ratio is the median of the per-step ratios (see
harness.report). Target: generated / seed <= 1.02. --control adds an A/A pair (the seed's model
against a second instance of itself): its distance from 1.000 is the noise of the run.
TensorFlow only (never torch in this process); Keras 3 on the TensorFlow backend.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from harness import ROOT, generated_model_module, report  # noqa: E402

SPEC = ROOT / "specs" / "variants" / "seed000_keras_functional.arch"
SEED_FIXTURE = ROOT / "tests" / "conformance" / "seed_fixtures" / "seed000.py"
SEED_LABEL = "seed_fixtures/seed000.py"


def build_seed_model():
    """Seed 000's network as the conformance fixture builds it, with logits out: the last Dense
    loses its softmax (the loss takes from_logits=True, as for the generated model)."""
    spec = importlib.util.spec_from_file_location("seed000_fixture", SEED_FIXTURE)
    fixture = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fixture)
    model = fixture.build_model()
    model.layers[-1].activation = keras.activations.linear
    return model


def make_optimizer(module, model, args):
    """--optimizer sgd: keras.optimizers.SGD(0.01, momentum=0.9); generated: the spec's own."""
    if args.optimizer == "generated":
        return module.build_optimizer(model)
    return keras.optimizers.SGD(learning_rate=0.01, momentum=0.9)


def make_step(model, optimizer, args):
    """One train step, the same code for both models: a tf.function or model.train_on_batch."""
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    if args.step == "train_on_batch":
        model.compile(optimizer=optimizer, loss=loss_fn, jit_compile=args.jit)

        def run(x, y):
            return model.train_on_batch(x, y)

        return run

    @tf.function(jit_compile=args.jit)
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
        return loss

    def run(x, y):
        return step(x, y).numpy()  # the value: the step has finished

    return run


def make_batches(shape, num_classes, args):
    """`--batches` distinct (images, labels) batches from a seeded generator."""
    rng = np.random.default_rng(args.seed)
    batches = []
    for _ in range(args.batches):
        x = rng.standard_normal((args.batch, *shape), dtype=np.float32)
        y = rng.integers(0, num_classes, size=args.batch).astype(np.int32)
        batches.append((tf.constant(x), tf.constant(y)))
    return batches


def time_alternating(steps: dict, batches, args) -> dict:
    """Per-step seconds of each model, steps alternating between them, warm-up dropped."""
    times = {name: [] for name in steps}
    for i in range(args.warmup + args.steps):
        x, y = batches[i % len(batches)]
        for name, step in steps.items():
            start = time.perf_counter()
            step(x, y)
            if i >= args.warmup:
                times[name].append(time.perf_counter() - start)
    return times


def main() -> None:
    """Print ms/step and images/s per model and the generated / seed ratio."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=20, help="timed steps per model")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps (the first one traces)")
    p.add_argument("--batches", type=int, default=4, help="distinct batches, cycled")
    p.add_argument(
        "--step",
        choices=("function", "train_on_batch"),
        default="function",
        help="function: a tf.function train step (as the generated train.py);\n"
        "train_on_batch: model.compile(...) then model.train_on_batch",
    )
    p.add_argument("--jit", action="store_true", help="XLA: jit_compile=True for both")
    p.add_argument(
        "--optimizer",
        choices=("sgd", "generated"),
        default="sgd",
        help="sgd: keras.optimizers.SGD(0.01, momentum=0.9) for both;\n"
        "generated: the generated model.py's build_optimizer() for both",
    )
    p.add_argument(
        "--control",
        action="store_true",
        help="also an A/A pair, the seed's model against a second instance of itself:\n"
        "how far from 1.000 this machine's noise moves a ratio",
    )
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    keras.utils.set_random_seed(args.seed)
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        module = generated_model_module(SPEC, "keras", Path(tmp))
        models = {"generated": module.build_model(), "seed": build_seed_model()}
    count = models["generated"].count_params()
    assert count == models["seed"].count_params(), (count, models["seed"].count_params())
    assert module.INPUT_SHAPE == tuple(models["seed"].input_shape[1:]), module.INPUT_SHAPE
    models["seed"].set_weights(models["generated"].get_weights())
    optimizers = {name: make_optimizer(module, m, args) for name, m in models.items()}
    steps = {name: make_step(m, optimizers[name], args) for name, m in models.items()}
    optimizer = type(optimizers["generated"]).__name__
    devices = ", ".join(d.device_type for d in tf.config.list_logical_devices())
    print(
        f"keras {keras.__version__}, tensorflow {tf.__version__} ({devices}; "
        f"{os.cpu_count()} cores, load average {load:.2f} at start); batch {args.batch}; "
        f"median of {args.steps} steps after {args.warmup} warm-up; {args.step}"
        f"{' + XLA' if args.jit else ''}; {optimizer} for both; float32"
    )
    shape = " x ".join(map(str, module.INPUT_SHAPE))
    print(f"seed 000's AlexNet: input {shape}, {count:,} parameters")
    batches = make_batches(module.INPUT_SHAPE, module.NUM_CLASSES, args)
    times = time_alternating(steps, batches, args)
    labels = {
        "generated": "specs/variants/seed000_keras_functional.arch",
        "seed": SEED_LABEL,
    }
    report(times, labels, args.batch)
    if args.control:
        twin = build_seed_model()
        twin.set_weights(models["generated"].get_weights())
        print("(control) A/A: the seed's model twice")
        control = {
            "seed": steps["seed"],
            "seed twin": make_step(twin, make_optimizer(module, twin, args), args),
        }
        times = time_alternating(control, batches, args)
        labels = {name: f"{SEED_LABEL} ({name})" for name in control}
        report(times, labels, args.batch, target=None)
    print(f"load average {os.getloadavg()[0]:.2f} at end")


if __name__ == "__main__":
    main()
