"""The Keras trainer's input: a tf.data pipeline over the shared NumPy augmentation.

Each item is `pipeline(image, sample_rng(seed, epoch, index))` on `data[index]`, the call the
PyTorch trainer makes, so both trainers see the same pixels for the same (seed, epoch, index).
tf.data makes `workers` batches at once in a deterministic map, one tf.numpy_function call per
batch, each on a thread of its own that augments the batch's items one after the other (as a
PyTorch DataLoader worker makes a whole batch; Pillow and NumPy release the GIL for their heavy
parts), stacks them and mixes them (mixup / cutmix) with the generator of (seed, epoch, batch);
it prefetches AHEAD batches ahead of the step. A thread per batch rather than per item: on small
images (the embedded 67 x 67 ones) the items' threads spent more time handing the GIL over than
augmenting (bench/keras_feed.py). The epoch's last batches, fewer than `workers`, share out
their items among `workers` threads instead, so that no core idles at the end of a pass.
"""

from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial

import numpy as np
import tensorflow as tf

# the runtime beside this file (isort: split keeps one order wherever ruff runs)
# isort: split
from augment import batch_rng, mix_batch, sample_rng
from imagefolder import DataError

AHEAD = 2  # batches prefetched ahead of the step


class Feed:
    """Batches of (items, labels) of one dataset through tf.data, `workers` of them made at
    once, each by one thread: up to workers + AHEAD batches in memory."""

    def __init__(self, data, pipeline, seed, workers, sample_spec):
        """data: (array, label) items; pipeline: (array, rng) -> array of sample_spec, a
        tf.TensorSpec of one augmented item (float32 image(s) or int32 token ids)."""
        self.data, self.pipeline, self.seed = data, pipeline, seed
        self.workers, self.sample_spec = max(1, workers), sample_spec
        self.failure = None  # the first DataError a worker met, re-raised as it is
        # the items of the epoch's last batches, fewer than workers
        self.pool = ThreadPoolExecutor(self.workers)

    def sample(self, epoch, index):
        """Item `index` augmented with the generator of (seed, epoch, index); a bad file
        (found when it is read or decoded) is kept to re-raise as itself."""
        try:
            image, label = self.data[index]
            return self.pipeline(image, sample_rng(self.seed, epoch, index)), label
        except DataError as err:
            self.failure = self.failure or err
            raise

    def batch(self, epoch, order, size, mix, tail, number):
        """Batch `number` of `order` (items number * size on): (stacked items, int32
        labels), or (items, float32 soft targets) mixed by mix_batch with the generator
        of (seed, epoch, number) when mix = (num_classes, mix entries) names any; its items
        made on this thread, or on the Feed's pool from batch `tail` on."""
        indices = map(int, order[int(number) * size : (int(number) + 1) * size])
        if int(number) < tail:
            pairs = [self.sample(epoch, index) for index in indices]
        else:
            pairs = list(self.pool.map(partial(self.sample, epoch), indices))
        x = np.stack([x for x, _ in pairs])
        labels = np.array([y for _, y in pairs], np.int32)
        if mix is None or not mix[1]:
            return x, labels
        rng = batch_rng(self.seed, epoch, int(number))
        return mix_batch(x, labels, *mix, rng)

    def dataset(self, epoch, order, size, first=0, mix=None):
        """The batches of `order` of `size` items from batch `first` on, a tf.data.Dataset of
        (x, int32 labels), or of (x, float32 soft targets) when mix = (num_classes, mix
        entries) names any."""
        spec, mixing = self.sample_spec, mix is not None and bool(mix[1])
        out = (spec.dtype, tf.float32 if mixing else tf.int32)
        targets = [None, mix[0]] if mixing else [None]
        count = -(-len(order) // size)
        # the epoch's last batches, fewer than workers, from batch `tail` on
        tail = count - max(0, count - first) % self.workers
        make = partial(self.batch, epoch, np.asarray(order), size, mix, tail)

        def load(number):
            x, y = tf.numpy_function(make, [number], out)
            return tf.ensure_shape(x, [None, *spec.shape]), tf.ensure_shape(y, targets)

        numbers = tf.data.Dataset.range(first, max(first, count))
        batches = numbers.map(load, self.workers, deterministic=True)
        return batches.prefetch(AHEAD).with_options(self.options())

    def options(self):
        """Deterministic order, a thread pool of the pipeline's own (the map's `workers`
        calls and prefetching) and no autotuning (its own thread cost 5-10 % of the images/s
        here: bench/keras_feed.py)."""
        options = tf.data.Options()
        options.deterministic = True
        options.threading.private_threadpool_size = self.workers + 1
        options.autotune.enabled = False
        return options

    def checked(self, batches):
        """Iterate batches, a worker's DataError raised as itself (one line, no traceback)."""
        with self.reported():
            yield from batches

    @contextmanager
    def reported(self):
        """A block reading this Feed's batches (in a tf.function, too), a worker's
        DataError raised as itself."""
        try:
            yield
        except tf.errors.OpError:
            if self.failure is not None:
                raise self.failure from None
            raise


def replica_parts(count):
    """A dataset map: one batch -> its `count` parts as np.array_split cuts them, the first
    batch size % count parts one item longer."""

    def parts(*batch):
        size = tf.shape(batch[0])[0]
        bounds = tf.range(count + 1) * (size // count)
        bounds += tf.minimum(tf.range(count + 1), size % count)
        return tf.data.Dataset.range(count).map(
            lambda i: tuple(array[bounds[i] : bounds[i + 1]] for array in batch)
        )

    return parts


def distribute(strategy, batches):
    """Several replicas: the batches split across them (unequal parts allowed), each part
    fetched to its replica's device ahead of the step. One: the host batches as they are
    (the strategy copies each to its device; a device iterator costs 0.1-0.3 s to start, at
    every epoch and every validation)."""
    count = strategy.num_replicas_in_sync
    if count == 1:
        return batches
    parts = batches.flat_map(replica_parts(count))
    return strategy.distribute_datasets_from_function(lambda context: parts)
