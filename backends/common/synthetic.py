"""An embedded, deterministic, procedurally generated image classification dataset."""

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


def class_attributes(label):
    """Return (shape, colour, texture) indices of a class; a bijection on 0..999."""
    a, b, d = label % 10, (label // 10) % 10, label // 100
    return a, (a + b) % 10, (a + b + d) % 10


def shape_mask(shape, u, v):
    """Boolean mask of a shape in unit coordinates (u right, v down, radius about 1)."""
    au, av, r2 = np.abs(u), np.abs(v), u * u + v * v
    box = np.maximum(au, av)
    masks = {
        "circle": lambda: r2 <= 1.0,
        "square": lambda: box <= 0.85,
        "triangle": lambda: (v <= 0.75) & (au <= (v + 1.0) * 0.6),
        "stripes": lambda: (box <= 0.95) & (np.floor((u + 1.0) * 2.5) % 2 == 0),
        "ring": lambda: (r2 <= 1.0) & (r2 >= 0.3),
        "cross": lambda: ((au <= 0.3) | (av <= 0.3)) & (box <= 1.0),
        "diamond": lambda: au + av <= 1.1,
        "x": lambda: (np.abs(au - av) <= 0.3) & (box <= 0.9),
        "bar": lambda: u * u + (v / 0.4) ** 2 <= 1.0,
        "frame": lambda: (box <= 0.95) & (box >= 0.6),
    }
    return masks[shape]()


def texture_gain(texture, u, v, phase, rng):
    """Brightness multiplier in [DARK, 1] of a texture over the shape."""
    k = np.pi * 3.0
    lit = {
        "solid": lambda: np.ones_like(u, dtype=bool),
        "hstripes": lambda: np.sin(k * v + phase) > 0,
        "vstripes": lambda: np.sin(k * u + phase) > 0,
        "diagonal": lambda: np.sin(k * 0.7 * (u + v) + phase) > 0,
        "checker": lambda: (np.sin(k * u + phase) > 0) ^ (np.sin(k * v + phase) > 0),
        "dots": lambda: np.sin(k * u + phase) ** 2 + np.sin(k * v + phase) ** 2 > 0.5,
        "gradient": lambda: DARK + (1.0 - DARK) * np.clip((u + 1.0) / 2.0, 0.0, 1.0),
        "waves": lambda: np.sin(k * v + 2.0 * np.sin(k * 0.7 * u) + phase) > 0,
        "speckle": lambda: rng.random(u.shape) > 0.35,
        "antidiagonal": lambda: np.sin(k * 0.7 * (u - v) + phase) > 0,
    }
    gain = lit[texture]()
    return np.where(gain, 1.0, DARK) if gain.dtype == bool else gain


def render(label, size, rng):
    """Draw one uint8 HxWx3 image of a class with random pose, colour jitter and noise."""
    h, w = size
    shape, colour, texture = class_attributes(label)
    radius = rng.uniform(0.22, 0.38) * min(h, w)
    cy = rng.uniform(radius * 0.8, h - radius * 0.8)
    cx = rng.uniform(radius * 0.8, w - radius * 0.8)
    angle = rng.uniform(-0.25, 0.25)
    dy = (np.arange(h)[:, None] + 0.5 - cy) / radius
    dx = (np.arange(w)[None, :] + 0.5 - cx) / radius
    u = np.cos(angle) * dx + np.sin(angle) * dy
    v = np.cos(angle) * dy - np.sin(angle) * dx
    mask = shape_mask(SHAPES[shape], u, v)[..., None]
    gain = texture_gain(TEXTURES[texture], u, v, rng.uniform(0, 2 * np.pi), rng)[
        ..., None
    ]
    fg = np.clip(COLOURS[colour] * rng.uniform(0.85, 1.05, 3), 0.0, 1.0) * gain
    bg = rng.uniform(0.15, 0.45) + rng.uniform(-0.05, 0.05, 3)
    bg = bg + rng.normal(0.0, rng.uniform(0.02, 0.08), (h, w, 3))
    img = np.where(mask, fg, bg)
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


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
