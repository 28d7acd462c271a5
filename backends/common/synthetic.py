"""An embedded, deterministic, procedurally generated image classification dataset."""

from statistics import NormalDist

import numpy as np

SHAPES = (
    "circle",
    "square",
    "triangle",
    "stripes",
    "ring",
    "cross",
    "diamond",
    "x",
    "bar",
    "frame",
)
COLOURS = np.array(
    [
        (0.90, 0.10, 0.10),  # red
        (0.10, 0.80, 0.10),  # green
        (0.15, 0.25, 0.95),  # blue
        (0.95, 0.90, 0.10),  # yellow
        (0.90, 0.10, 0.90),  # magenta
        (0.10, 0.90, 0.90),  # cyan
        (1.00, 0.55, 0.00),  # orange
        (0.50, 0.10, 0.70),  # purple
        (0.97, 0.97, 0.97),  # white
        (0.55, 0.30, 0.10),  # brown
    ]
)
TEXTURES = (
    "solid",
    "hstripes",
    "vstripes",
    "diagonal",
    "checker",
    "dots",
    "gradient",
    "waves",
    "speckle",
    "antidiagonal",
)
MAX_CLASSES = len(SHAPES) * len(COLOURS) * len(TEXTURES)
SPLITS = {"train": 0, "val": 1}
DARK = 0.45  # brightness of the unlit part of a texture
# the standard normal's quantiles at the 256 values of a random byte: Gaussian noise by lookup
BYTE_QUANTILES = np.array([NormalDist().inv_cdf((k + 0.5) / 256) for k in range(256)])
# where the R, G and B parts of a 3 x 256 lookup table start
CHANNEL_LUT_OFFSETS = np.array([0, 256, 512], np.uint16)


def class_attributes(label):
    """Return (shape, colour, texture) indices of a class; a bijection on 0..999."""
    a, b, d = label % 10, (label // 10) % 10, label // 100
    return a, (a + b) % 10, (a + b + d) % 10


def box(u, v):
    """The box norm max(|u|, |v|)."""
    return np.maximum(np.abs(u), np.abs(v))


def within(x, low, high):
    """Whether low <= x <= high."""
    return (x >= low) & (x <= high)


SHAPE_MASKS = {
    "circle": lambda u, v: u * u + v * v <= 1.0,
    "square": lambda u, v: box(u, v) <= 0.85,
    "triangle": lambda u, v: (v <= 0.75) & (np.abs(u) <= (v + 1.0) * 0.6),
    # the even ones of bands 0.4 wide: floor((u + 1) * 2.5) % 2 == 0, without a float modulo
    "stripes": lambda u, v: (box(u, v) <= 0.95) & (np.sin(2.5 * np.pi * (u + 1.0)) > 0),
    "ring": lambda u, v: within(u * u + v * v, 0.3, 1.0),
    "cross": lambda u, v: (
        (np.minimum(np.abs(u), np.abs(v)) <= 0.3) & (box(u, v) <= 1.0)
    ),
    "diamond": lambda u, v: np.abs(u) + np.abs(v) <= 1.1,
    "x": lambda u, v: (np.abs(np.abs(u) - np.abs(v)) <= 0.3) & (box(u, v) <= 0.9),
    "bar": lambda u, v: u * u + (v / 0.4) ** 2 <= 1.0,
    "frame": lambda u, v: within(box(u, v), 0.6, 0.95),
}


def shape_mask(shape, u, v):
    """Boolean mask of a shape in unit coordinates (u right, v down, radius about 1)."""
    return SHAPE_MASKS[shape](u, v)


def texture_lit(texture, u, v, phase, rng):
    """Where a texture is lit (bool), or how much in [0, 1] (float32) for a gradient."""
    k = np.pi * 3.0
    lit = {
        "solid": lambda: np.ones_like(u, dtype=bool),
        "hstripes": lambda: np.sin(k * v + phase) > 0,
        "vstripes": lambda: np.sin(k * u + phase) > 0,
        "diagonal": lambda: np.sin(k * 0.7 * (u + v) + phase) > 0,
        "checker": lambda: (np.sin(k * u + phase) > 0) ^ (np.sin(k * v + phase) > 0),
        "dots": lambda: np.sin(k * u + phase) ** 2 + np.sin(k * v + phase) ** 2 > 0.5,
        "gradient": lambda: np.clip((u + 1.0) / 2.0, 0.0, 1.0),
        "waves": lambda: np.sin(k * v + 2.0 * np.sin(k * 0.7 * u) + phase) > 0,
        "speckle": lambda: rng.random(u.shape, dtype=np.float32) > 0.35,
        "antidiagonal": lambda: np.sin(k * 0.7 * (u - v) + phase) > 0,
    }
    return lit[texture]()


def texture_gain(texture, u, v, phase, rng):
    """Brightness multiplier in [DARK, 1] (float32) of a texture over the shape."""
    lit = texture_lit(texture, u, v, phase, rng).astype(np.float32)
    return DARK + (1.0 - DARK) * lit


def unit_coordinates(h, w, rng):
    """float32 (u, v) of every pixel for a shape in a random pose (centre, size, angle)."""
    radius = rng.uniform(0.22, 0.38) * min(h, w)
    cy = rng.uniform(radius * 0.8, h - radius * 0.8)
    cx = rng.uniform(radius * 0.8, w - radius * 0.8)
    angle = rng.uniform(-0.25, 0.25)
    dy = ((np.arange(h) + 0.5 - cy) / radius).astype(np.float32)[:, None]
    dx = ((np.arange(w) + 0.5 - cx) / radius).astype(np.float32)
    cos, sin = np.float32(np.cos(angle)), np.float32(np.sin(angle))
    return cos * dx + sin * dy, cos * dy - sin * dx


def per_channel(pixels):
    """An H x W array repeated for R, G and B: H x 3W, an HxWx3 image's layout."""
    return np.repeat(pixels, 3, axis=1)


def foreground(colour, gain):
    """uint8 H x 3W pixels of the shape: its RGB colour in [0, 1] times the gain.

    In uint16 fixed point (gain in 256ths): no float array three times the image's size
    (large temporaries cost page faults whenever malloc hands their memory back).
    """
    gain *= 256.0  # in place: the caller's gain is spent
    gain += 0.5
    pixels = per_channel(gain.astype(np.uint16))
    pixels *= np.tile(np.round(colour * 255.0).astype(np.uint16), gain.shape[1])
    pixels += 128
    pixels >>= 8
    return pixels.astype(np.uint8)


def background(h, w, rng):
    """uint8 H x 3W pixels of a grey-ish level per channel plus Gaussian noise."""
    level = rng.uniform(0.15, 0.45) + rng.uniform(-0.05, 0.05, 3)
    noise = level[:, None] + rng.uniform(0.02, 0.08) * BYTE_QUANTILES
    lut = (np.clip(noise, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8).ravel()
    draws = np.frombuffer(rng.bytes(h * w * 3), np.uint8).reshape(h, 3 * w)
    return np.take(lut, draws + np.tile(CHANNEL_LUT_OFFSETS, w))


def shape_and_gain(shape, texture, h, w, rng):
    """(mask, texture gain) of every pixel, for a shape in a random pose."""
    u, v = unit_coordinates(h, w, rng)
    mask = shape_mask(shape, u, v)
    return mask, texture_gain(texture, u, v, rng.uniform(0, 2 * np.pi), rng)


def shape_pixels(label, h, w, rng):
    """(H x W mask, uint8 H x 3W foreground) of a class's shape in a random pose."""
    shape, colour, texture = class_attributes(label)
    mask, gain = shape_and_gain(SHAPES[shape], TEXTURES[texture], h, w, rng)
    tint = np.clip(COLOURS[colour] * rng.uniform(0.85, 1.05, 3), 0.0, 1.0)
    return mask, foreground(tint, gain)


def overlay(mask, top, bottom):
    """top where the H x W mask is set, else bottom (uint8 H x 3W): in place in top."""
    select = per_channel(mask).view(np.uint8)
    np.negative(select, out=select)  # 255 where mask, else 0: a blend without branches
    top ^= bottom
    top &= select
    top ^= bottom
    return top


def render(label, size, rng):
    """Draw one uint8 HxWx3 image of a class with random pose, colour jitter and noise."""
    h, w = size
    mask, fg = shape_pixels(label, h, w, rng)
    return overlay(mask, fg, background(h, w, rng)).reshape(h, w, 3)


class SyntheticImages:
    """Images of coloured, textured shapes; item i is a pure function of (seed, split, i)."""

    def __init__(
        self, num_classes, size=(32, 32), split="train", per_class=100, seed=0
    ):
        """Describe the dataset; images are drawn on demand."""
        if not 1 <= num_classes <= MAX_CLASSES:
            raise ValueError(
                f"synthetic data has 1..{MAX_CLASSES} classes, not {num_classes}"
            )
        if split not in SPLITS:
            raise ValueError(f"split must be 'train' or 'val', not {split!r}")
        self.num_classes, self.size, self.per_class = (
            num_classes,
            tuple(size),
            per_class,
        )
        self.split, self.seed = split, seed

    def __len__(self):
        """Number of images: per_class for every class."""
        return self.num_classes * self.per_class

    def __getitem__(self, i):
        """Return (uint8 HxWx3 image, label); labels cycle so every prefix is balanced."""
        if not 0 <= i < len(self):
            raise IndexError(i)
        rng = np.random.default_rng([self.seed, SPLITS[self.split], i])
        label = i % self.num_classes
        return render(label, self.size, rng), label
