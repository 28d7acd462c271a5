"""The Keras trainer's input: a tf.data pipeline over the shared NumPy augmentation.

Each item is `pipeline(image, sample_rng(seed, epoch, index))` on `data[index]`, the call the
PyTorch trainer makes, so both trainers see the same pixels for the same (seed, epoch, index).
tf.data runs it in a parallel, deterministic map (tf.numpy_function: Pillow and NumPy release
the GIL for their heavy parts), batches the items in the epoch's order, mixes whole batches
(mixup / cutmix) with the generator of (seed, epoch, batch) and prefetches ahead of the step.
"""

import numpy as np
import tensorflow as tf

# the runtime beside this file (isort: split keeps one order wherever ruff runs)
# isort: split
from augment import batch_rng, mix_batch, sample_rng
from imagefolder import DataError


class Feed:
    """Batches of (items, labels) of one dataset through tf.data, `workers` items at a time."""

    def __init__(self, data, pipeline, seed, workers, sample_spec):
        """data: (array, label) items; pipeline: (array, rng) -> array of sample_spec, a
        tf.TensorSpec of one augmented item (float32 image(s) or int32 token ids)."""
        self.data, self.pipeline, self.seed = data, pipeline, seed
        self.workers, self.sample_spec = max(1, workers), sample_spec
        self.failure = None  # the first DataError a worker met, re-raised as it is

    def sample(self, epoch, index):
        """Item `index` augmented with the generator of (seed, epoch, index)."""
        epoch, index = int(epoch), int(index)
        try:
            image, label = self.data[index]
        except DataError as err:
            self.failure = self.failure or err
            raise
        rng = sample_rng(self.seed, epoch, index)
        return self.pipeline(image, rng), np.int32(label)

    def mixed(self, epoch, batch, x, labels, num_classes, entries):
        """A batch mixed by mix_batch with the generator of (seed, epoch, batch)."""
        rng = batch_rng(self.seed, int(epoch), int(batch))
        return mix_batch(x, labels, num_classes, entries, rng)

    def dataset(self, epoch, order, size, first=0, mix=None):
        """The batches of `order` in chunks of size from chunk `first` on, a tf.data.Dataset of
        (x, int32 labels), or of (x, float32 soft targets) when mix = (num_classes, mix
        entries) names any."""
        spec = self.sample_spec
        out = (spec.dtype, tf.int32)

        def load(index):
            x, y = tf.numpy_function(self.sample, [epoch, index], out, stateful=False)
            return tf.ensure_shape(x, spec.shape), tf.ensure_shape(y, ())

        items = tf.data.Dataset.from_tensor_slices(np.asarray(order[first * size :]))
        batches = items.map(load, self.workers, deterministic=True).batch(size)
        if mix is not None and mix[1]:
            batches = batches.enumerate(first).map(self.mixer(epoch, *mix))
        return batches.prefetch(tf.data.AUTOTUNE).with_options(self.options())

    def mixer(self, epoch, num_classes, entries):
        """A dataset map: (batch number, (x, labels)) -> mixed (x, soft targets)."""
        out = (self.sample_spec.dtype, tf.float32)

        def mix(batch, pair):
            x, y = tf.numpy_function(
                lambda b, x, y: self.mixed(epoch, b, x, y, num_classes, entries),
                [batch, *pair],
                out,
                stateful=False,
            )
            shape = [None, *self.sample_spec.shape]
            return tf.ensure_shape(x, shape), tf.ensure_shape(y, [None, num_classes])

        return mix

    def options(self):
        """Deterministic order; `workers` threads in a pool of the pipeline's own."""
        options = tf.data.Options()
        options.deterministic = True
        options.threading.private_threadpool_size = self.workers
        return options

    def checked(self, batches):
        """Iterate batches, a worker's DataError raised as itself (one line, no traceback)."""
        try:
            yield from batches
        except tf.errors.OpError:
            if self.failure is not None:
                raise self.failure from None
            raise
