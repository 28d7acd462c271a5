"""Images/s of the Keras trainer's tf.data feed (backends/keras/runtime/feed.py) against the
thread-pool Loader it replaced (copied below as the peer), over the same items with the same
augmentation, the feeds alternating (A B A B ...) in one run.

Two data sets: a JPEG folder the script writes (--images JPEGs of 500 x 375 at quality 90;
shorter side to 256, random 224 crop, flip, normalize, as bench/'s input-pipeline figures) and
the embedded synthetic images at specs/mini_alexnet.arch's size (67 x 67; random_crop(67,
from=72), hflip, normalize), or at --synthetic-size S (random_crop(S, from=S * 72 // 67): 227
for AlexNet's). --images 0 leaves the JPEGs out. A pass is one epoch's worth of batches of
--batch items in the order of (seed, epoch), delivered as the trainer's step takes them, as
tensors: the old Loader's NumPy batches through its per-batch `distribute` and converted (as
the old step's call converted them), the new feed's dataset through train.py's `distribute`,
both on one CPU device. The figures are the median images/s over --rounds passes and the
median CPU time (all of the process's threads) per image; the ratio is new / old of the median
images/s. Goal: >= 1.0. On a loaded machine the images/s follow the share of the
cores the scheduler gives each feed's threads; the CPU time per image is the steadier figure.
TensorFlow only (never torch in this process).
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from harness import ROOT  # noqa: E402
from PIL import Image  # noqa: E402

sys.path[:0] = [str(ROOT / "backends" / "common"), str(ROOT / "backends" / "keras" / "runtime")]

from augment import build_pipeline, sample_rng  # noqa: E402
from feed import Feed, distribute  # noqa: E402
from imagefolder import ImageFolderDataset, scan_imagefolder  # noqa: E402
from synthetic import SyntheticImages  # noqa: E402

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
JPEG_AUGMENT = [
    {"name": "random_crop", "size": 224, "from": 256},
    {"name": "hflip"},
    {"name": "normalize", "mean": MEAN, "std": STD},
]


def synthetic_augment(size):
    """specs/mini_alexnet.arch's train augmentation for synthetic images of size x size."""
    return [
        {"name": "random_crop", "size": size, "from": size * 72 // 67},
        {"name": "hflip"},
        {"name": "normalize", "mean": MEAN, "std": STD},
    ]


class OldLoader:
    """The Keras trainer's feed before tf.data (train.py's Loader, verbatim): NumPy batches of
    one epoch, loaded by a thread pool one batch ahead of training."""

    def __init__(self, data, pipeline, seed, workers):
        """data: (uint8 image, label) items; pipeline: (image, rng) -> float32 array."""
        self.data, self.pipeline, self.seed = data, pipeline, seed
        self.pool = ThreadPoolExecutor(max(1, workers))

    def sample(self, epoch, index):
        """Item `index` augmented with the generator of (seed, epoch, index)."""
        image, label = self.data[index]
        return self.pipeline(image, sample_rng(self.seed, epoch, index)), label

    def batch(self, epoch, indices):
        """(float32 images, int32 labels) of the given items."""
        samples = list(self.pool.map(lambda i: self.sample(epoch, int(i)), indices))
        return np.stack([s[0] for s in samples]), np.array([s[1] for s in samples], "int32")

    def batches(self, epoch, order, size, first=0):
        """Yield the batches of `order` in chunks of size, from chunk `first` on."""
        chunks = [order[i : i + size] for i in range(first * size, len(order), size)]
        with ThreadPoolExecutor(1) as ahead:
            pending = None
            for chunk in chunks:
                ready, pending = pending, ahead.submit(self.batch, epoch, chunk)
                if ready is not None:
                    yield ready.result()
            if pending is not None:
                yield pending.result()


def old_distribute(strategy, batch):
    """The old trainer's split of a NumPy batch across the replicas (verbatim)."""
    parts = [np.array_split(array, strategy.num_replicas_in_sync) for array in batch]
    return strategy.experimental_distribute_values_from_function(
        lambda ctx: tuple(part[ctx.replica_id_in_sync_group] for part in parts)
    )


def write_jpegs(root, count, seed=0):
    """root/train/<2 classes>/*.jpg and a val/ copy: count JPEGs of 500 x 375, quality 90, of
    smooth colour fields with fine noise (photo-like JPEG sizes)."""
    rng = np.random.default_rng(seed)
    for split in ("train", "val"):
        for c in range(2):
            (root / split / f"c{c}").mkdir(parents=True)
    for i in range(count):
        coarse = rng.uniform(0, 255, (6, 8, 3)).astype(np.uint8)
        field = np.asarray(Image.fromarray(coarse).resize((500, 375), Image.BICUBIC), float)
        pixels = np.clip(field + rng.normal(0, 12, field.shape), 0, 255).astype(np.uint8)
        image = Image.fromarray(pixels)
        image.save(root / "train" / f"c{i % 2}" / f"{i}.jpg", quality=90)
        if i < 2:
            image.save(root / "val" / f"c{i}" / f"{i}.jpg", quality=90)


def old_pass(data, pipeline, order, args, strategy):
    """Images delivered by one epoch of the old Loader."""
    loader = OldLoader(data, pipeline, 0, args.workers)
    count = 0
    for batch in loader.batches(0, order, args.batch):
        # the old step's call converted the NumPy parts to tensors; the new feed's are
        tf.nest.map_structure(tf.convert_to_tensor, old_distribute(strategy, batch))
        count += 1
    return count * args.batch


def new_pass(data, pipeline, order, args, strategy, shape):
    """Images delivered by one epoch of the tf.data feed."""
    feed = Feed(data, pipeline, 0, args.workers, tf.TensorSpec(shape, tf.float32))
    batches = feed.dataset(0, order, args.batch)
    count = sum(1 for _ in feed.checked(distribute(strategy, batches)))
    return count * args.batch


def measure(name, data, augment, hw, args, strategy):
    """Alternate the two feeds over `data`; print the medians and the ratio."""
    pipeline = build_pipeline(augment, hw, train=True)
    steps = len(data) // args.batch
    order = np.random.default_rng([0, 2, 0]).permutation(len(data))[: steps * args.batch]
    feeds = {
        "thread pool (old)": lambda: old_pass(data, pipeline, order, args, strategy),
        "tf.data (new)": lambda: new_pass(data, pipeline, order, args, strategy, (*hw, 3)),
    }
    rates, cpu = {label: [] for label in feeds}, {label: [] for label in feeds}
    for _ in range(args.rounds + 1):  # the first round warms up both (discarded)
        for label, run in feeds.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            images = run()
            rates[label].append(images / (time.perf_counter() - start))
            cpu[label].append((time.process_time() - start_cpu) / images)
    medians = {label: statistics.median(r[1:]) for label, r in rates.items()}
    for label, median in medians.items():
        ms = 1e3 * statistics.median(cpu[label][1:])
        print(f"{name:9s} {label:18s} {median:8.1f} images/s  {ms:6.2f} CPU ms/image")
    old, new = medians.values()
    print(f"{name:9s} tf.data / thread pool   {new / old:8.3f}")
    return new / old


def main():
    """Run both data sets; print the figures and the machine's load."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=300, help="JPEGs in the folder")
    p.add_argument("--synthetic", type=int, default=1280, help="synthetic images")
    p.add_argument("--synthetic-size", type=int, default=67, help="their height and width")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1))
    p.add_argument("--rounds", type=int, default=3, help="timed passes of each feed")
    args = p.parse_args()
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    print(
        f"load before: {Path('/proc/loadavg').read_text().strip()}; workers {args.workers}, {args}"
    )
    if args.images > 0:
        with tempfile.TemporaryDirectory() as tmp:
            write_jpegs(Path(tmp), args.images)
            train, _, _ = scan_imagefolder(tmp, 2)
            measure("jpeg", ImageFolderDataset(train), JPEG_AUGMENT, (224, 224), args, strategy)
    hw = (args.synthetic_size, args.synthetic_size)
    synthetic = SyntheticImages(10, hw, "train", args.synthetic // 10)
    measure("synthetic", synthetic, synthetic_augment(hw[0]), hw, args, strategy)
    print(f"load after: {Path('/proc/loadavg').read_text().strip()}")


if __name__ == "__main__":
    main()
