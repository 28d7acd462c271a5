"""The Keras trainer's input: a tf.data pipeline over the shared NumPy augmentation.

Each item is `pipeline(image, sample_rng(seed, epoch, index))` on `data[index]`, the call the
PyTorch trainer makes, so both trainers see the same pixels for the same (seed, epoch, index).
tf.data runs it in a parallel, deterministic map (tf.numpy_function: Pillow and NumPy release
the GIL for their heavy parts) over chunks of a few items (one call into Python per chunk, not
per item: the call costs about 0.1 ms, much of a small image's augmentation), batches the
items in the epoch's order, mixes whole batches (mixup / cutmix) with the generator of
(seed, epoch, batch) and prefetches ahead of the step.
"""

from functools import partial

import numpy as np
import tensorflow as tf

# the runtime beside this file (isort: split keeps one order wherever ruff runs)
# isort: split
from augment import batch_rng, mix_batch, sample_rng
from imagefolder import DataError

CHUNK = 8  # items per call into Python


class Feed:
    """Batches of (items, labels) of one dataset through tf.data, `workers` chunks at a time."""

    def __init__(self, data, pipeline, seed, workers, sample_spec):
        """data: (array, label) items; pipeline: (array, rng) -> array of sample_spec, a
        tf.TensorSpec of one augmented item (float32 image(s) or int32 token ids)."""
        self.data, self.pipeline, self.seed = data, pipeline, seed
        self.workers, self.sample_spec = max(1, workers), sample_spec
        self.failure = None  # the first DataError a worker met, re-raised as it is

    def sample(self, epoch, index):
        """Item `index` augmented with the generator of (seed, epoch, index)."""
        try:
            image, label = self.data[index]
        except DataError as err:
            self.failure = self.failure or err
            raise
        return self.pipeline(image, sample_rng(self.seed, epoch, index)), label

    def samples(self, epoch, indices):
        """(stacked items, int32 labels) of sample() for each of `indices`."""
        pairs = [self.sample(int(epoch), int(index)) for index in indices]
        labels = np.array([y for _, y in pairs], np.int32)
        return np.stack([x for x, _ in pairs]), labels

    def mixed(self, epoch, num_classes, entries, batch, x, labels):
        """A batch mixed by mix_batch with the generator of (seed, epoch, batch)."""
        rng = batch_rng(self.seed, epoch, int(batch))
        return mix_batch(x, labels, num_classes, entries, rng)

    def dataset(self, epoch, order, size, first=0, mix=None):
        """The batches of `order` of `size` items from batch `first` on, a tf.data.Dataset of
        (x, int32 labels), or of (x, float32 soft targets) when mix = (num_classes, mix
        entries) names any."""
        spec = self.sample_spec
        out = (spec.dtype, tf.int32)

        def load(indices):
            x, y = tf.numpy_function(self.samples, [epoch, indices], out)
            return tf.ensure_shape(x, [None, *spec.shape]), tf.ensure_shape(y, [None])

        chunks = tf.data.Dataset.from_tensor_slices(np.asarray(order[first * size :]))
        chunks = chunks.batch(CHUNK).map(load, self.workers, deterministic=True)
        batches = chunks.unbatch().batch(size)
        if mix is not None and mix[1]:
            batches = batches.enumerate(first).map(self.mixer(epoch, *mix))
        return batches.prefetch(tf.data.AUTOTUNE).with_options(self.options())

    def mixer(self, epoch, num_classes, entries):
        """A dataset map: (batch number, (x, labels)) -> mixed (x, soft targets)."""
        out = (self.sample_spec.dtype, tf.float32)
        mixed = partial(self.mixed, epoch, num_classes, entries)

        def mix(batch, pair):
            x, y = tf.numpy_function(mixed, [batch, *pair], out)
            shape = [None, *self.sample_spec.shape]
            return tf.ensure_shape(x, shape), tf.ensure_shape(y, [None, num_classes])

        return mix

    def options(self):
        """Deterministic order; a thread pool of the pipeline's own: `workers` threads for
        the map's calls and one for the rest (batching, mixing)."""
        options = tf.data.Options()
        options.deterministic = True
        options.threading.private_threadpool_size = self.workers + 1
        return options

    def checked(self, batches):
        """Iterate batches, a worker's DataError raised as itself (one line, no traceback)."""
        try:
            yield from batches
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
