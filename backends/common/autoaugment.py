"""torchvision's TrivialAugmentWide, RandAugment and AutoAugment on uint8 HxWxC images,
in NumPy.

Each op computes what torchvision.transforms.v2.functional computes on a uint8 tensor,
in the same float32 steps (torch fuses x * r + y * a into one rounding: an FMA), so the
pixels are the same; the affine ops sample the nearest pixel and fill with 0 (a sample on a
pixel's edge is a tie that torch's own grid rounds by the CPU's arithmetic).
"""

import math

import numpy as np

# the runtime beside this file (isort: split keeps one order wherever ruff runs)
# isort: split
from autoaugment_policies import POLICIES

BINS = 31  # torchvision's num_magnitude_bins
AUTO_BINS = 10  # AutoAugment's magnitude bins
GRAY = (0.2989, 0.587, 0.114)  # torchvision's rgb_to_grayscale weights
F32 = np.float32


def linspace(start, end, steps):
    """torch.linspace in float32: start + step * i up to the middle, end - step * (n - 1 - i)
    after it, each with one rounding as torch computes it (so the values are torch's)."""
    start, end = F32(start), F32(end)
    step = F32((end - start) / F32(steps - 1))
    i = np.arange(steps, dtype=F32)
    low = fma(start, step, i)
    high = fma(end, -step, F32(steps - 1) - i)
    return np.where(np.arange(steps) < steps // 2, low, high)


def posterize_bits(bins, divisor):
    """torchvision's posterize bins: 8 - i / ((bins - 1) / divisor), rounded half to even."""
    i = np.arange(bins, dtype=F32)
    return np.rint(F32(8) - i / F32((bins - 1) / divisor)).astype(int)


def _unsigned(values):
    """A magnitude table whose sign is never flipped."""
    return (lambda bins, h, w: values(bins), False)


def _signed(values):
    """A magnitude table whose sign is flipped with probability 1/2."""
    return (lambda bins, h, w: values(bins, h, w), True)


NONE = (lambda bins, h, w: None, False)
COLOURS = ("Brightness", "Color", "Contrast", "Sharpness")
# torchvision's _AUGMENTATION_SPACE of each, in its order: op -> (magnitudes(bins, h, w), signed)
WIDE = {
    "Identity": NONE,
    "ShearX": _signed(lambda b, h, w: linspace(0.0, 0.99, b)),
    "ShearY": _signed(lambda b, h, w: linspace(0.0, 0.99, b)),
    "TranslateX": _signed(lambda b, h, w: linspace(0.0, 32.0, b)),
    "TranslateY": _signed(lambda b, h, w: linspace(0.0, 32.0, b)),
    "Rotate": _signed(lambda b, h, w: linspace(0.0, 135.0, b)),
    **{op: _signed(lambda b, h, w: linspace(0.0, 0.99, b)) for op in COLOURS},
    "Posterize": _unsigned(lambda b: posterize_bits(b, 6)),
    "Solarize": _unsigned(lambda b: linspace(1.0, 0.0, b)),
    "AutoContrast": NONE,
    "Equalize": NONE,
}
RAND = {
    "Identity": NONE,
    "ShearX": _signed(lambda b, h, w: linspace(0.0, 0.3, b)),
    "ShearY": _signed(lambda b, h, w: linspace(0.0, 0.3, b)),
    "TranslateX": _signed(lambda b, h, w: linspace(0.0, 150.0 / 331.0 * w, b)),
    "TranslateY": _signed(lambda b, h, w: linspace(0.0, 150.0 / 331.0 * h, b)),
    "Rotate": _signed(lambda b, h, w: linspace(0.0, 30.0, b)),
    **{op: _signed(lambda b, h, w: linspace(0.0, 0.9, b)) for op in COLOURS},
    "Posterize": _unsigned(lambda b: posterize_bits(b, 4)),
    "Solarize": _unsigned(lambda b: linspace(1.0, 0.0, b)),
    "AutoContrast": NONE,
    "Equalize": NONE,
}

# AutoAugment's ops: RandAugment's without the identity, and invert; 10 magnitude bins
AUTO = {**{op: RAND[op] for op in RAND if op != "Identity"}, "Invert": NONE}


def draw_op(space, img, rng, magnitude=None):
    """(op, magnitude) as torchvision draws them: the op uniformly, then the bin (uniformly
    when `magnitude` is None: TrivialAugmentWide), then the sign."""
    names = tuple(space)
    op = names[int(rng.integers(0, len(names)))]
    if space[op][0](BINS, *img.shape[:2]) is None:
        return op, 0.0
    index = int(rng.integers(0, BINS)) if magnitude is None else magnitude
    return op, draw_magnitude(space[op], BINS, index, img, rng)


def draw_magnitude(entry, bins, index, img, rng):
    """Bin `index` of an op's magnitudes (0.0 without), negated when the op is signed and a
    uniform draw is <= 0.5 (an op without magnitudes or sign draws nothing)."""
    table, signed = entry
    values = table(bins, *img.shape[:2])
    if values is None:
        return 0.0
    value = float(values[index])
    if signed and rng.random() <= 0.5:
        value = -value
    return value


def trivial_augment(img, rng):
    """torchvision's TrivialAugmentWide: one op, a uniform bin of its magnitudes."""
    return apply_op(img, *draw_op(WIDE, img, rng))


def rand_augment(img, rng, num_ops, magnitude):
    """torchvision's RandAugment: num_ops ops in turn, each at bin `magnitude`."""
    for _ in range(num_ops):
        img = apply_op(img, *draw_op(RAND, img, rng, magnitude))
    return img


def auto_augment(img, rng, policy="imagenet"):
    """torchvision's AutoAugment: one sub-policy of `policy` uniformly, then each of its two
    (op, probability, bin) in turn, applied when a uniform draw is <= the probability."""
    subpolicies = POLICIES[policy]
    for op, probability, index in subpolicies[int(rng.integers(0, len(subpolicies)))]:
        if rng.random() <= probability:
            img = apply_op(
                img, op, draw_magnitude(AUTO[op], AUTO_BINS, index, img, rng)
            )
    return img


def inverse_affine(center, angle, translate, shear):
    """torchvision's _get_inverse_affine_matrix (scale 1), in the same double arithmetic."""
    rot, sx, sy = math.radians(angle), math.radians(shear[0]), math.radians(shear[1])
    (cx, cy), (tx, ty) = center, translate
    a = math.cos(rot - sy) / math.cos(sy)
    b = -(a * math.tan(sx) + math.sin(rot))
    c = math.sin(rot - sy) / math.cos(sy)
    d = math.cos(rot) - c * math.tan(sx)
    matrix = [d, -b, 0.0, -c, a, 0.0]
    matrix[2] += cx - matrix[0] * (cx + tx) - matrix[1] * (cy + ty)
    matrix[5] += cy - matrix[3] * (cx + tx) - matrix[4] * (cy + ty)
    return matrix


def affine(img, matrix):
    """The image sampled at matrix x (output pixel), nearest pixel, 0 outside: torchvision's
    _affine_grid and grid_sample(align_corners=False) in their float32 steps."""
    h, w = img.shape[:2]
    theta = np.array(matrix, F32).reshape(2, 3).T / np.array([0.5 * w, 0.5 * h], F32)
    xs = np.arange(w, dtype=F32) + F32((1.0 - w) * 0.5)
    ys = np.arange(h, dtype=F32) + F32((1.0 - h) * 0.5)
    grid_x, grid_y = np.meshgrid(xs, ys)
    coords = []
    for axis, size in ((0, w), (1, h)):
        a, b, c = theta[:, axis]
        g = (grid_x * a + grid_y * b).astype(F32) + c
        coords.append(np.rint((g + F32(1)) * F32(size / 2) - F32(0.5)).astype(np.int64))
    col, row = coords
    inside = (col >= 0) & (col < w) & (row >= 0) & (row < h)
    out = img[row.clip(0, h - 1), col.clip(0, w - 1)]
    out[~inside] = 0
    return out


def shear_matrix(magnitude, axis, hw):
    """The inverse affine matrix of ShearX (axis 0) / ShearY (axis 1) of an h x w image:
    torchvision shears by atan(magnitude) degrees about the top-left corner."""
    h, w = hw
    angles = [0.0, 0.0]
    angles[axis] = math.degrees(math.atan(magnitude))
    return inverse_affine([-w * 0.5, -h * 0.5], 0.0, [0.0, 0.0], angles)


def translate_matrix(magnitude, axis):
    """The inverse affine matrix of TranslateX / TranslateY by int(magnitude) pixels."""
    shift = [0.0, 0.0]
    shift[axis] = float(int(magnitude))
    return inverse_affine([0.0, 0.0], 0.0, shift, [0.0, 0.0])


def rotate_matrix(angle):
    """The inverse affine matrix of a rotation about the centre (counter-clockwise degrees)."""
    return inverse_affine([0.0, 0.0], -angle, [0.0, 0.0], [0.0, 0.0])


def shear(img, magnitude, axis):
    """ShearX (axis 0) / ShearY (axis 1)."""
    return affine(img, shear_matrix(magnitude, axis, img.shape[:2]))


def translate(img, magnitude, axis):
    """TranslateX / TranslateY by int(magnitude) pixels."""
    return affine(img, translate_matrix(magnitude, axis))


def rotate(img, angle):
    """v2.functional.rotate about the centre (counter-clockwise degrees), same size; its
    exact quarter turns where it takes them."""
    angle = angle % 360
    square = img.shape[0] == img.shape[1]
    turns = {0: 0, 180: 2, **({90: 1, 270: 3} if square else {})}
    if angle in turns:
        return np.rot90(img, turns[angle]).copy()
    return affine(img, rotate_matrix(angle))


def fma(x, alpha, y):
    """x + alpha * y in float32 with one rounding, as torch's add(x, y, alpha=alpha)."""
    return (y.astype(np.float64) * F32(alpha) + x).astype(F32)


def to_uint8(x):
    """Clamp to [0, 255] and truncate, as torch's clamp_(0, 255).to(uint8)."""
    return np.clip(x, 0, 255).astype(np.uint8)


def grayscale(img):
    """torchvision's float32 luma of a uint8 image (HxWx1), floored; 1 channel: itself."""
    if img.shape[2] == 1:
        return img.astype(F32)
    red, green, blue = (img[..., k : k + 1] for k in range(3))
    luma = fma(fma(red.astype(F32) * F32(GRAY[0]), GRAY[1], green), GRAY[2], blue)
    return np.floor(luma)


def blend(img, other, ratio):
    """torchvision's _blend: img * ratio + other * (1 - ratio), clamped, truncated."""
    return to_uint8(fma(img.astype(F32) * F32(ratio), 1.0 - ratio, np.asarray(other)))


def brightness(img, factor):
    """adjust_brightness: img * factor, clamped, truncated."""
    return to_uint8(img.astype(F32) * F32(factor))


def saturation(img, factor):
    """adjust_saturation: a blend with the luma (1 channel: unchanged)."""
    return img if img.shape[2] == 1 else blend(img, grayscale(img), factor)


def contrast(img, factor):
    """adjust_contrast: a blend with the mean luma (the float32 sum of whole numbers,
    exact below 2**24, divided in float32)."""
    luma = grayscale(img)
    mean = F32(np.sum(luma, dtype=np.float64)) / F32(luma.size)
    return blend(img, np.full(1, mean, F32), factor)


def sharpness(img, factor):
    """adjust_sharpness: the inner pixels blended with a 3x3 blur (1/13, centre 5/13,
    rounded: the sums are whole, so torch's round never meets a tie); borders kept."""
    h, w = img.shape[:2]
    if h <= 2 or w <= 2:
        return img
    x = img.astype(np.int64)
    window = sum(x[i : h - 2 + i, j : w - 2 + j] for i in range(3) for j in range(3))
    total = window + 4 * x[1:-1, 1:-1]
    blurred = (2 * total + 13) // 26  # round(total / 13)
    out = img.astype(F32)
    inner = out[1:-1, 1:-1]
    out[1:-1, 1:-1] = fma(inner, 1.0 - factor, (blurred - x[1:-1, 1:-1]).astype(F32))
    return to_uint8(out)


def posterize(img, bits):
    """Keep the top `bits` bits of each value."""
    return img if bits >= 8 else img & np.uint8(((1 << bits) - 1) << (8 - bits))


def solarize(img, threshold):
    """Invert the values at or above threshold (compared in float32, as torch)."""
    return np.where(img.astype(F32) >= F32(threshold), 255 - img, img)


def autocontrast(img):
    """Stretch each channel's range to [0, 255] in torchvision's float32 steps."""
    x = img.astype(F32)
    low, high = x.min(axis=(0, 1)), x.max(axis=(0, 1))
    flat = high == low
    scale = ((high - low) * F32(1.0 / 255)).astype(F32)
    low, scale = np.where(flat, F32(0), low), np.where(flat, F32(1), scale)
    return to_uint8((x - low) / scale)


def equalize(img):
    """Pillow's (and torchvision's) histogram equalisation of each channel."""
    return np.stack([_equalize_channel(img[..., c]) for c in range(img.shape[2])], -1)


def _equalize_channel(band):
    """One channel: lut[v] = (cumulative count below v + step // 2) // step."""
    hist = np.bincount(band.ravel(), minlength=256)
    step = (band.size - hist[band.max()]) // 255
    if step == 0:
        return band
    lut = np.concatenate([[0], (np.cumsum(hist)[:-1] + step // 2) // step])
    return np.clip(lut, 0, 255).astype(np.uint8)[band]


OPS = {
    "Identity": lambda img, m: img,
    "ShearX": lambda img, m: shear(img, m, 0),
    "ShearY": lambda img, m: shear(img, m, 1),
    "TranslateX": lambda img, m: translate(img, m, 0),
    "TranslateY": lambda img, m: translate(img, m, 1),
    "Rotate": rotate,
    "Brightness": lambda img, m: brightness(img, 1.0 + m),
    "Color": lambda img, m: saturation(img, 1.0 + m),
    "Contrast": lambda img, m: contrast(img, 1.0 + m),
    "Sharpness": lambda img, m: sharpness(img, 1.0 + m),
    "Posterize": lambda img, m: posterize(img, int(m)),
    "Solarize": lambda img, m: solarize(img, 255.0 * m),
    "AutoContrast": lambda img, m: autocontrast(img),
    "Equalize": lambda img, m: equalize(img),
    "Invert": lambda img, m: invert(img),
}


def invert(img):
    """255 - each value (torchvision's invert of uint8)."""
    return 255 - img


def apply_op(img, op, magnitude):
    """One op of torchvision's augmentation space at a magnitude, on a uint8 HxWxC image."""
    if img.dtype != np.uint8:
        raise ValueError(f"{op} needs uint8 pixels: place it before normalize")
    return OPS[op](img, magnitude)
