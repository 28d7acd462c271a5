"""Keras 3 layers the generated models need beyond keras.layers (keras.ops only, channels-last)."""

import math

import keras
import numpy as np
from keras import ops

# the runtime beside this file (isort: split keeps one order wherever ruff runs)
# isort: split
import torch_names  # noqa: F401  (dotted layer names under Keras's torch backend)


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


def channel_window(channels, size, groups=1):
    """(channels, channels): 1 where channel j is inside channel c's window
    c - size // 2 .. c + (size - 1) // 2 and in c's group of channels // groups, else 0."""
    c = np.arange(channels)
    offset = c[:, None] - c[None, :]  # j - c, rows j
    group = c // (channels // groups)
    inside = (offset >= -(size // 2)) & (offset <= (size - 1) // 2)
    return (inside & (group[:, None] == group[None, :])).astype("float64")


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
        """Normalise over a channel window centred as PyTorch/Caffe centre it, within each
        group: the window sums of x^2 as one matmul by a banded channels x channels matrix."""
        x32 = ops.cast(
            x, keras.backend.result_type(x.dtype, "float32")
        )  # float64 stays
        window = self.alpha * channel_window(x.shape[-1], self.size, self.groups)
        d = self.k + ops.matmul(
            ops.square(x32), ops.convert_to_tensor(window, x32.dtype)
        )
        return ops.cast(x32 * ops.power(d, -self.beta), self.compute_dtype)

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


def resize_taps(size_in, size_out, interpolation, align_corners=False):
    """Per output index along one axis: two input indices and the second one's weight, with
    half-pixel centres and no antialiasing (bilinear as torch's interpolate with
    align_corners=False: clamped at the edges; with align_corners=True output i samples
    i * (size_in - 1) / (size_out - 1); nearest: output i reads input
    floor((i + 0.5) * size_in / size_out), in exact integer arithmetic, as the PyTorch model's
    Resize does)."""
    if interpolation == "nearest":
        indices = [(2 * i + 1) * size_in // (2 * size_out) for i in range(size_out)]
        return [(index, index, 0.0) for index in indices]
    corner_scale = (size_in - 1) / (size_out - 1) if size_out > 1 else 0.0
    taps = []
    for i in range(size_out):
        if align_corners:
            source = corner_scale * i  # torch's order of operations
        else:
            source = max((i + 0.5) * (size_in / size_out) - 0.5, 0.0)
        low = min(int(source), size_in - 1)
        taps.append((low, min(low + 1, size_in - 1), source - low))
    return taps


@keras.saving.register_keras_serializable(package="archdsl")
class Resize(keras.layers.Layer):
    """Resize channels-last maps to (height, width) in the compute dtype (Keras's Resizing
    interpolates in float32 on TensorFlow whatever the dtype): each axis takes two input rows
    by index and mixes them, a * (1 - t) + b * t."""

    def __init__(
        self, height, width, interpolation="bilinear", align_corners=False, **kwargs
    ):
        """interpolation: "bilinear" or "nearest"; align_corners (bilinear): the corner
        pixels' centres of input and output coincide."""
        super().__init__(**kwargs)
        self.height, self.width, self.interpolation = height, width, interpolation
        self.align_corners = align_corners

    def build(self, input_shape):
        """Each spatial axis with its input indices and weights, from the (static) input size."""
        sizes = zip((1, 2), input_shape[1:3], (self.height, self.width), strict=True)
        self.axes = []
        for axis, size_in, size_out in sizes:
            taps = resize_taps(
                size_in, size_out, self.interpolation, self.align_corners
            )
            low, high, weight = zip(*taps, strict=True)
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
            height=self.height,
            width=self.width,
            interpolation=self.interpolation,
            align_corners=self.align_corners,
        )
        return config


def _spread(x, axis, stride):
    """stride - 1 zeros after every element along a spatial axis of an NHWC tensor (the
    trailing ones included): n elements become n * stride."""
    if stride == 1:
        return x
    widths = [[0, 0]] * 5
    widths[axis + 1] = [0, stride - 1]
    spread = ops.pad(ops.expand_dims(x, axis + 1), widths)
    shape = list(x.shape[1:])
    shape[axis - 1] *= stride
    return ops.reshape(spread, (-1, *shape))


def _pad_or_crop(x, axis, before, after):
    """Zeros added (a positive count) or elements removed (a negative one) at both ends of
    a spatial axis of an NHWC tensor."""
    size = x.shape[axis]
    index = [slice(None)] * 4
    index[axis] = slice(max(-before, 0), size - max(-after, 0))
    widths = [[0, 0]] * 4
    widths[axis] = [max(before, 0), max(after, 0)]
    return ops.pad(x[tuple(index)], widths)


@keras.saving.register_keras_serializable(package="archdsl")
class ConvTranspose2D(keras.layers.Layer):
    """torch.nn.ConvTranspose2d on channels-last maps: out = (in - 1) * stride - 2 * padding
    + dilation * (kernel - 1) + output_padding + 1 per axis, optionally grouped.

    Computed as the convolution it transposes: zeros spread the input by the stride, padding
    of dilation * (kernel - 1) - padding (output_padding more after; a negative padding
    crops) frames it, and a stride-1 grouped conv with the flipped kernel runs over it. The
    kernel is (kh, kw, filters / groups, in): Keras's Conv2DTranspose layout, per group.
    """

    def __init__(
        self,
        filters,
        kernel_size,
        strides=1,
        padding=0,
        output_padding=0,
        groups=1,
        dilation_rate=1,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        """padding and output_padding: an int or (h, w), as torch's."""
        super().__init__(**kwargs)
        self.filters, self.groups, self.use_bias = filters, groups, use_bias
        self.kernel_size, self.strides = _pair(kernel_size), _pair(strides)
        self.padding, self.output_padding = _pair(padding), _pair(output_padding)
        self.dilation_rate = _pair(dilation_rate)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build(self, input_shape):
        """The kernel (kh, kw, filters / groups, in) and the bias (filters,)."""
        shape = (*self.kernel_size, self.filters // self.groups, input_shape[-1])
        self.kernel = self.add_weight(
            name="kernel", shape=shape, initializer=self.kernel_initializer
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias", shape=(self.filters,), initializer=self.bias_initializer
            )

    def conv_kernel(self):
        """The kernel of the forward conv: flipped, (kh, kw, in / groups, filters)."""
        kh, kw, per_group, channels = self.kernel.shape
        flipped = ops.flip(self.kernel, axis=(0, 1))
        grouped = ops.reshape(
            flipped, (kh, kw, per_group, self.groups, channels // self.groups)
        )
        return ops.reshape(
            ops.transpose(grouped, (0, 1, 4, 3, 2)), (kh, kw, -1, self.filters)
        )

    def call(self, x):
        """Spread, frame, convolve; the bias reaches every output, the padding's too."""
        for axis in (1, 2):
            k, s = self.kernel_size[axis - 1], self.strides[axis - 1]
            p, extra = self.padding[axis - 1], self.output_padding[axis - 1]
            reach = self.dilation_rate[axis - 1] * (k - 1)
            x = _spread(x, axis, s)  # s - 1 zeros after the last element too
            x = _pad_or_crop(x, axis, reach - p, reach - p + extra - (s - 1))
        x = ops.conv(x, self.conv_kernel(), dilation_rate=self.dilation_rate)
        return x + self.bias if self.use_bias else x

    def compute_output_shape(self, input_shape):
        """(batch, height, width, filters) by torch's formula."""
        sizes = [
            (n - 1) * s - 2 * p + d * (k - 1) + extra + 1
            for n, k, s, p, extra, d in zip(
                input_shape[1:3],
                self.kernel_size,
                self.strides,
                self.padding,
                self.output_padding,
                self.dilation_rate,
                strict=True,
            )
        ]
        return (input_shape[0], *sizes, self.filters)

    def get_config(self):
        """Constructor arguments, for saving."""
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            strides=self.strides,
            padding=self.padding,
            output_padding=self.output_padding,
            groups=self.groups,
            dilation_rate=self.dilation_rate,
            use_bias=self.use_bias,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
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
class Gelu(keras.layers.Layer):
    """x * Phi(x) with the exact (erf) normal CDF, or PyTorch's tanh approximation."""

    def __init__(self, approximate=False, **kwargs):
        """approximate: the tanh form (torch's approximate="tanh")."""
        super().__init__(**kwargs)
        self.approximate = approximate

    def call(self, x):
        """The formula in x's dtype (keras.ops.gelu is accurate to float32 only: its
        constants are float32 ones, ~5e-9 off in float64)."""
        if self.approximate:
            inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)
            return 0.5 * x * (1.0 + ops.tanh(inner))
        return 0.5 * x * (1.0 + ops.erf(x * math.sqrt(0.5)))

    def get_config(self):
        """Constructor arguments, for saving."""
        return {**super().get_config(), "approximate": self.approximate}


@keras.saving.register_keras_serializable(package="archdsl")
class LayerNorm(keras.layers.LayerNormalization):
    """keras.layers.LayerNormalization computed as PyTorch computes it: (x - mean) /
    sqrt(var + eps) * gamma + beta, the variance that of the centred values. Keras's own
    multiplies x and the mean by 1 / sqrt(var + eps) separately and takes the variance as
    E[x^2] - E[x]^2, which cancels badly where the variance is small next to the mean
    (one channel: torch gives beta exactly, Keras ~1e-5 off)."""

    def call(self, inputs):
        """Normalise over `axis`, then scale and shift."""
        x = ops.cast(inputs, self.compute_dtype)
        centred = x - ops.mean(x, axis=self.axis, keepdims=True)
        variance = ops.mean(ops.square(centred), axis=self.axis, keepdims=True)
        out = centred * ops.rsqrt(variance + self.epsilon)
        return out * ops.cast(self.gamma, out.dtype) + ops.cast(self.beta, out.dtype)


@keras.saving.register_keras_serializable(package="archdsl")
class LayerScale(keras.layers.Layer):
    """Each channel (the last axis) times a learned scale, initialised to `init`."""

    def __init__(self, init=1e-6, **kwargs):
        """init: the starting value of every scale."""
        super().__init__(**kwargs)
        self.init = init

    def build(self, input_shape):
        """One scale per channel."""
        self.scale = self.add_weight(
            shape=(input_shape[-1],),
            initializer=keras.initializers.Constant(self.init),
            name="scale",
        )

    def call(self, x):
        """x times its channel's scale."""
        return x * ops.cast(self.scale, x.dtype)

    def get_config(self):
        """Constructor arguments, for saving."""
        return {**super().get_config(), "init": self.init}


@keras.saving.register_keras_serializable(package="archdsl")
class StochasticDepth(keras.layers.Layer):
    """torchvision.ops.stochastic_depth(mode="row"): in training each example is zeroed with
    probability `rate` and the survivors scaled by 1 / (1 - rate); the identity in eval."""

    def __init__(self, rate, seed=None, **kwargs):
        """rate: the drop probability p, 0 to 1."""
        super().__init__(**kwargs)
        self.rate, self.seed = rate, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=False):
        """x times a per-example mask of 0 or 1 / (1 - rate) in training; x in eval."""
        if not training or self.rate == 0.0:
            return x
        survival = 1.0 - self.rate
        shape = (ops.shape(x)[0],) + (1,) * (len(x.shape) - 1)
        draw = keras.random.uniform(shape, seed=self.seed_generator, dtype=x.dtype)
        noise = ops.cast(draw < survival, x.dtype)
        return x * (noise / survival if survival > 0.0 else noise)

    def get_config(self):
        """Constructor arguments, for saving."""
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


@keras.saving.register_keras_serializable(package="archdsl")
class Chunk(keras.layers.Layer):
    """The `part`-th of `chunks` equal slices of the channels (the last axis)."""

    def __init__(self, chunks, part, **kwargs):
        """chunks: how many equal slices; part: which one, from 0."""
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
        """groups: how many groups the channels interleave from."""
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
