"""Keras 3 layers the generated models need beyond keras.layers (keras.ops only, channels-last)."""

import math

import keras
import numpy as np
from keras import ops


def _pair(value):
    """An int or a pair as a pair of ints."""
    return (value, value) if isinstance(value, int) else tuple(value)


def _pads(padding):
    """An int, (h, w) or ((top, bottom), (left, right)) as ((top, bottom), (left, right))."""
    if isinstance(padding, int):
        return ((padding, padding), (padding, padding))
    return tuple(_pair(p) for p in padding)


def pool_geometry(size, kernel, stride, before, after, ceil_mode):
    """PyTorch's pooled length and the extra trailing padding that a ceil-mode window reads."""
    span = size + before + after - kernel
    out = (math.ceil(span / stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + before:
        out -= 1
    extra = max((out - 1) * stride + kernel - (size + before + after), 0)
    return out, extra


@keras.saving.register_keras_serializable(package="archdsl")
class LocalResponseNorm(keras.layers.Layer):
    """The paper's LRN, b = a / (k + alpha * sum of a^2 over `size` channels)^beta (no 1/size)."""

    def __init__(self, size, alpha=1e-4, beta=0.75, k=2.0, groups=1, **kwargs):
        """groups > 1 keeps the window inside each of `groups` equal channel blocks (towers)."""
        super().__init__(**kwargs)
        self.size, self.alpha, self.beta, self.k, self.groups = (
            size,
            alpha,
            beta,
            k,
            groups,
        )

    def call(self, x):
        """Normalise over a channel window centred as PyTorch/Caffe centre it, within each group."""
        x32 = ops.cast(
            x, keras.backend.result_type(x.dtype, "float32")
        )  # float64 stays
        shape = ops.shape(x32)
        width = shape[-1] // self.groups
        sq = ops.reshape(ops.square(x32), (-1, *shape[1:-1], self.groups, width))
        pad = [[0, 0]] * (len(shape) - 1) + [
            [0, 0],
            [self.size // 2, (self.size - 1) // 2],
        ]
        padded = ops.pad(sq, pad)
        total = sum(padded[..., i : i + width] for i in range(self.size))
        scale = ops.power(
            self.k + self.alpha * ops.reshape(total, (-1, *shape[1:])), self.beta
        )
        return ops.cast(x32 / scale, self.compute_dtype)

    def get_config(self):
        """Constructor arguments, for saving."""
        config = super().get_config()
        config.update(
            size=self.size,
            alpha=self.alpha,
            beta=self.beta,
            k=self.k,
            groups=self.groups,
        )
        return config


@keras.saving.register_keras_serializable(package="archdsl")
class BatchNorm(keras.layers.BatchNormalization):
    """Keras's BatchNormalization with PyTorch's running variance.

    Both normalise a training batch by its biased variance (the mean squared deviation over the
    n = batch x height x width values of a channel); PyTorch's running_var then averages in the
    unbiased variance (times n / (n - 1)), Keras's moving_variance the biased one. This layer
    updates moving_variance as PyTorch does, so running statistics agree between the backends.
    """

    def call(self, inputs, training=None, mask=None):
        """Keras's layer, but the moving variance takes the unbiased batch variance."""
        if not (training and self.trainable) or mask is not None or self.renorm:
            return super().call(inputs, training=training, mask=mask)
        dtype = keras.backend.result_type(inputs.dtype, "float32")
        x = ops.cast(inputs, dtype)
        axis = self.axis % len(x.shape)
        axes = [i for i in range(len(x.shape)) if i != axis]
        mean, variance = ops.moments(x, axes=axes, synchronized=self.synchronized)
        shape, count = ops.shape(x), 1
        for i in axes:
            count = count * shape[i]
        count = ops.cast(count, dtype)
        unbiased = variance * count / ops.maximum(count - 1.0, 1.0)
        momentum = ops.convert_to_tensor(self.momentum, dtype=dtype)  # exact in float64
        moving_mean = ops.cast(self.moving_mean, dtype)
        moving_variance = ops.cast(self.moving_variance, dtype)
        self.moving_mean.assign(moving_mean * momentum + mean * (1.0 - momentum))
        self.moving_variance.assign(
            moving_variance * momentum + unbiased * (1.0 - momentum)
        )
        outputs = ops.batch_normalization(
            x,
            mean=mean,
            variance=variance,
            axis=axis,
            offset=ops.cast(self.beta, dtype) if self.center else None,
            scale=ops.cast(self.gamma, dtype) if self.scale else None,
            epsilon=self.epsilon,
        )
        return ops.cast(outputs, self.compute_dtype)


def resize_taps(size_in, size_out, interpolation):
    """Per output index along one axis: two input indices and the second one's weight, with
    half-pixel centres and no antialiasing (bilinear as torch's interpolate with
    align_corners=False: clamped at the edges; nearest: output i reads input
    floor((i + 0.5) * size_in / size_out), in exact integer arithmetic, as the PyTorch model's
    Resize does)."""
    if interpolation == "nearest":
        indices = [(2 * i + 1) * size_in // (2 * size_out) for i in range(size_out)]
        return [(index, index, 0.0) for index in indices]
    taps = []
    for i in range(size_out):
        source = max((i + 0.5) * (size_in / size_out) - 0.5, 0.0)
        low = min(int(source), size_in - 1)
        taps.append((low, min(low + 1, size_in - 1), source - low))
    return taps


@keras.saving.register_keras_serializable(package="archdsl")
class Resize(keras.layers.Layer):
    """Resize channels-last maps to (height, width) in the compute dtype (Keras's Resizing
    interpolates in float32 on TensorFlow whatever the dtype): each axis takes two input rows
    by index and mixes them, a * (1 - t) + b * t."""

    def __init__(self, height, width, interpolation="bilinear", **kwargs):
        """interpolation: "bilinear" or "nearest"."""
        super().__init__(**kwargs)
        self.height, self.width, self.interpolation = height, width, interpolation

    def build(self, input_shape):
        """Each spatial axis with its input indices and weights, from the (static) input size."""
        sizes = zip((1, 2), input_shape[1:3], (self.height, self.width), strict=True)
        self.axes = []
        for axis, size_in, size_out in sizes:
            low, high, weight = zip(
                *resize_taps(size_in, size_out, self.interpolation), strict=True
            )
            shape = [1, 1, 1, 1]
            shape[axis] = size_out
            self.axes.append((axis, list(low), list(high), np.reshape(weight, shape)))

    def call(self, x):
        """Resize along the height axis, then along the width axis."""
        for axis, low, high, weight in self.axes:
            first = ops.take(x, low, axis=axis)
            if self.interpolation == "nearest":
                x = first
            else:
                t = ops.convert_to_tensor(weight, dtype=x.dtype)
                x = first * (1 - t) + ops.take(x, high, axis=axis) * t
        return x

    def compute_output_shape(self, input_shape):
        """(batch, height, width, channels)."""
        return (input_shape[0], self.height, self.width, input_shape[3])

    def get_config(self):
        """Constructor arguments, for saving."""
        config = super().get_config()
        config.update(
            height=self.height, width=self.width, interpolation=self.interpolation
        )
        return config


@keras.saving.register_keras_serializable(package="archdsl")
class FlattenCHW(keras.layers.Layer):
    """Flatten a channels-last map in C, H, W order (PyTorch's and the portable file's), where
    the order of the features is observable: a model output, an elementwise merge."""

    def call(self, x):
        """(N, H, W, C) -> (N, C * H * W), channel by channel."""
        return ops.reshape(ops.transpose(x, (0, 3, 1, 2)), (ops.shape(x)[0], -1))

    def compute_output_shape(self, input_shape):
        """(batch, C * H * W)."""
        return (input_shape[0], math.prod(input_shape[1:]))


class _PaddedPool2D(keras.layers.Layer):
    """A 2-D pool with PyTorch's explicit padding and ceil_mode, on channels-last input."""

    def __init__(self, pool_size, strides=None, padding=0, ceil_mode=False, **kwargs):
        """padding: int, (h, w) or ((top, bottom), (left, right)); strides default to pool_size."""
        super().__init__(**kwargs)
        self.pool_size = _pair(pool_size)
        self.strides = _pair(strides if strides is not None else pool_size)
        self.padding = _pads(padding)
        self.ceil_mode = ceil_mode

    def _trailing(self, x):
        """Extra (bottom, right) padding so that VALID pooling gives PyTorch's output size."""
        dims = zip(
            ops.shape(x)[1:3], self.pool_size, self.strides, self.padding, strict=True
        )
        return tuple(
            pool_geometry(n, k, s, *p, self.ceil_mode)[1] for n, k, s, p in dims
        )

    def _pool(self, x, method):
        """VALID pooling with this layer's window."""
        return method(x, self.pool_size, self.strides, padding="valid")

    def get_config(self):
        """Constructor arguments, for saving."""
        config = super().get_config()
        config.update(
            pool_size=self.pool_size,
            strides=self.strides,
            padding=self.padding,
            ceil_mode=self.ceil_mode,
        )
        return config


def _pad_hw(x, pads, value):
    """Pad the two spatial axes of an NHWC tensor with a constant."""
    return ops.pad(
        x, [[0, 0], list(pads[0]), list(pads[1]), [0, 0]], constant_values=value
    )


@keras.saving.register_keras_serializable(package="archdsl")
class PaddedMaxPool2D(_PaddedPool2D):
    """torch.nn.MaxPool2D(kernel, stride, padding, ceil_mode): padding never wins the max."""

    def call(self, x):
        """Pad with -inf (explicit and ceil-mode padding alike), then VALID max pooling."""
        bottom, right = self._trailing(x)
        (top, pad_b), (left, pad_r) = self.padding
        x = _pad_hw(x, ((top, pad_b + bottom), (left, pad_r + right)), float("-inf"))
        return self._pool(x, ops.max_pool)


@keras.saving.register_keras_serializable(package="archdsl")
class PaddedAvgPool2D(_PaddedPool2D):
    """torch.nn.AvgPool2D(kernel, stride, padding, ceil_mode, count_include_pad)."""

    def __init__(
        self,
        pool_size,
        strides=None,
        padding=0,
        ceil_mode=False,
        count_include_pad=True,
        **kwargs,
    ):
        """count_include_pad: the divisor counts explicit padding (torch's default)."""
        super().__init__(pool_size, strides, padding, ceil_mode, **kwargs)
        self.count_include_pad = count_include_pad

    def call(self, x):
        """Window mean; the divisor counts explicit padding if asked, never the ceil overhang."""
        trailing = self._trailing(x)
        overhang = tuple((0, t) for t in trailing)
        ones = ops.ones((1, *ops.shape(x)[1:3], 1), dtype=x.dtype)
        mask = _pad_hw(ones, self.padding, 1.0 if self.count_include_pad else 0.0)
        sums = self._pool(
            _pad_hw(_pad_hw(x, self.padding, 0.0), overhang, 0.0), ops.average_pool
        )
        counts = self._pool(_pad_hw(mask, overhang, 0.0), ops.average_pool)
        return sums / counts

    def get_config(self):
        """Constructor arguments, for saving."""
        config = super().get_config()
        config.update(count_include_pad=self.count_include_pad)
        return config


@keras.saving.register_keras_serializable(package="archdsl")
class Chunk(keras.layers.Layer):
    """The `part`-th of `chunks` equal slices of the channels (the last axis)."""

    def __init__(self, chunks, part, **kwargs):
        super().__init__(**kwargs)
        self.chunks, self.part = chunks, part

    def call(self, x):
        """Channels part * C / chunks up to (part + 1) * C / chunks."""
        width = x.shape[-1] // self.chunks
        return x[..., self.part * width : (self.part + 1) * width]

    def compute_output_shape(self, input_shape):
        """The channels divided by `chunks`."""
        return (*input_shape[:-1], input_shape[-1] // self.chunks)

    def get_config(self):
        """Constructor arguments, for saving."""
        return {**super().get_config(), "chunks": self.chunks, "part": self.part}


@keras.saving.register_keras_serializable(package="archdsl")
class ChannelShuffle(keras.layers.Layer):
    """torchvision's channel_shuffle, channels-last: channel g * (C / groups) + i of the
    input becomes channel i * groups + g."""

    def __init__(self, groups, **kwargs):
        super().__init__(**kwargs)
        self.groups = groups

    def call(self, x):
        """(N, H, W, groups, C / groups) transposed to (N, H, W, C / groups, groups)."""
        h, w, c = ops.shape(x)[1:]
        grouped = ops.reshape(x, (-1, h, w, self.groups, c // self.groups))
        return ops.reshape(ops.transpose(grouped, (0, 1, 2, 4, 3)), (-1, h, w, c))

    def compute_output_shape(self, input_shape):
        """The input's shape."""
        return tuple(input_shape)

    def get_config(self):
        """Constructor arguments, for saving."""
        return {**super().get_config(), "groups": self.groups}


def _broadcast(shapes):
    """The sizes (batch left out) that shapes of one rank broadcast to: the largest of each
    axis (the others being 1)."""
    return [max(sizes) for sizes in zip(*(s[1:] for s in shapes), strict=True)]


@keras.saving.register_keras_serializable(package="archdsl")
class BroadcastMerge(keras.layers.Layer):
    """The sum or product of inputs whose sizes of 1 stretch to the others' (NumPy's
    rule), each input broadcast to the output's shape first: Keras 3's TensorFlow
    `ops.add` takes a second operand with one size above 1 (a one-channel gate over a
    batch) for a bias and adds it along the wrong axis, so only equal shapes meet here."""

    def __init__(self, operation, **kwargs):
        """operation: "add" or "mul"."""
        super().__init__(**kwargs)
        self.operation = operation

    def call(self, inputs):
        """Every input broadcast to the output's shape, then summed or multiplied."""
        shape = (ops.shape(inputs[0])[0], *_broadcast([x.shape for x in inputs]))
        combine = ops.add if self.operation == "add" else ops.multiply
        out = ops.broadcast_to(inputs[0], shape)
        for x in inputs[1:]:
            out = combine(out, ops.broadcast_to(x, shape))
        return out

    def compute_output_shape(self, input_shape):
        """The batch, then the largest size along each axis."""
        return (input_shape[0][0], *_broadcast(input_shape))

    def get_config(self):
        """Constructor arguments, for saving."""
        return {**super().get_config(), "operation": self.operation}
