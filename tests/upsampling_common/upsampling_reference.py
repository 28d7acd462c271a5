"""NumPy references for conv_transpose and upsample (N, C, H, W), written from their definitions
(PyTorch's ConvTranspose2d and Upsample docs), shared by the PyTorch and Keras tests.

Also the cases both backends run, so that each backend is held to the same combinations.
"""

import math
from fractions import Fraction

import numpy as np

# conv_transpose cases: (input C x H x W, arguments as written in the spec)
CONV_TRANSPOSE_CASES = [
    ("4 x 3 x 4", "conv_transpose(6, kernel=3, stride=2, pad=1, output_pad=1)"),
    ("3 x 4 x 3", "conv_transpose(2, kernel=4, stride=2, pad=1, bias=false)"),
    (
        "4 x 5 x 7",
        "conv_transpose(6, kernel=3 x 2, stride=2 x 3, pad=1 x 0, output_pad=1 x 2, groups=2,"
        " dilation=1 x 2)",
    ),
    ("2 x 4 x 4", "conv_transpose(3, kernel=3, dilation=3, output_pad=2)"),
    ("3 x 3 x 2", "conv_transpose(2, kernel=1, stride=3, output_pad=2)"),
    ("2 x 5 x 5", "conv_transpose(4, kernel=3, stride=2, pad=3)"),
    ("4 x 3 x 3", "conv_transpose(8, kernel=2, stride=2, groups=4)"),
    ("6 x 2 x 5", "conv_transpose(3, kernel=2 x 5, stride=1 x 2, pad=0 x 2, groups=3)"),
]
# upsample cases: (input C x H x W, arguments)
UPSAMPLE_CASES = [
    ("2 x 3 x 4", "upsample"),
    ("2 x 3 x 2", "upsample(3 x 2)"),
    ("1 x 2 x 7", "upsample(1 x 41)"),  # nn.Upsample's float32 nearest misreads at 41
    ("2 x 3 x 4", "upsample(2, mode=bilinear)"),
    ("2 x 4 x 3", "upsample(3 x 2, mode=bilinear)"),
    ("2 x 3 x 4", "upsample(2, mode=bilinear, align_corners=true)"),
    ("2 x 1 x 5", "upsample(3 x 2, mode=bilinear, align_corners=true)"),
]

# a small spec with both ops, for the counts against the built models
TINY_UNET = """
model TinyUNet
input image: 3 x 8 x 8
down = conv(8, kernel=3, stride=2, pad=1) |> relu
up   = conv_transpose(4, kernel=3, stride=2, pad=1, output_pad=1, groups=2) |> relu
skip = conv(4, kernel=1) from image
both = concat(up, skip) |> upsample(2, mode=bilinear) |> conv(2, kernel=3, stride=2, pad=1)
       |> upsample(3) |> flatten |> dense(5)
"""


def conv_transpose(x, w, b, stride, pad, output_pad, dilation, groups):
    """ConvTranspose2d by scattering: input (i, j) of channel c adds x * w[c, o, a, b] at
    output (i * s - p + a * d, j * s - p + b * d) of each output channel o of c's group."""
    n, c, h, wd = x.shape
    per_group, kh, kw = w.shape[1:]
    axes = zip((h, wd), (kh, kw), stride, pad, output_pad, dilation, strict=True)
    sizes = [(size - 1) * s - 2 * p + d * (k - 1) + e + 1 for size, k, s, p, e, d in axes]
    out = np.zeros((n, per_group * groups, *sizes))
    for i in range(h):
        for j in range(wd):
            for a in range(kh):
                for bb in range(kw):
                    oi = i * stride[0] - pad[0] + a * dilation[0]
                    oj = j * stride[1] - pad[1] + bb * dilation[1]
                    if not (0 <= oi < sizes[0] and 0 <= oj < sizes[1]):
                        continue
                    for g in range(groups):
                        ins = slice(g * (c // groups), (g + 1) * (c // groups))
                        outs = slice(g * per_group, (g + 1) * per_group)
                        out[:, outs, oi, oj] += x[:, ins, i, j] @ w[ins, :, a, bb]
    return out + (0 if b is None else b[None, :, None, None])


def upsample_axis(n_in, scale, mode, align_corners):
    """The (n_in * scale, n_in) matrix of upsampling one axis by a whole-number scale."""
    n_out = n_in * scale
    m = np.zeros((n_out, n_in))
    for i in range(n_out):
        if mode == "nearest":
            m[i, i // scale] = 1.0  # the nearest source pixel: floor(i / scale), exactly
            continue
        if align_corners:
            source = i * (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
        else:
            source = max(float((Fraction(2 * i + 1, 2 * scale)) - Fraction(1, 2)), 0.0)
        low = min(math.floor(source), n_in - 1)
        high = min(low + 1, n_in - 1)
        m[i, low] += 1 - (source - low)
        m[i, high] += source - low
    return m


def upsample(x, scale, mode, align_corners=False):
    """Upsample N, C, H, W by (sh, sw)."""
    rows = upsample_axis(x.shape[2], scale[0], mode, align_corners)
    cols = upsample_axis(x.shape[3], scale[1], mode, align_corners)
    return np.einsum("ih,nchw,jw->ncij", rows, x, cols)
