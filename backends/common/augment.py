"""Image augmentation in NumPy: resizing, crops, flips, colour and geometry policies, PCA
lighting and normalisation."""

import math
from functools import partial

import numpy as np
from PIL import Image

# the runtime beside this file (isort: split keeps one order wherever ruff runs)
# isort: split
from autoaugment import auto_augment, rand_augment, trivial_augment

# Krizhevsky et al. (2012) lighting noise: ImageNet RGB covariance eigen-pairs on [0, 1] pixels,
# as published with fb.resnet.torch; the columns of EIGVEC are the eigenvectors.
EIGVAL = np.array([0.2175, 0.0188, 0.0045])
EIGVEC = np.array(
    [
        [-0.5675, 0.7192, 0.4009],
        [-0.5808, -0.0045, -0.8140],
        [-0.5836, -0.6948, 0.4203],
    ]
)
CROPS = ("random_crop", "center_crop", "random_resized_crop")
MIXES = (
    "mixup",
    "cutmix",
)  # batch-level: applied by mix_batch, after the per-image steps
ATTEMPTS = 10  # torchvision's RandomResizedCrop and RandomErasing try 10 boxes
LUMA = np.array([0.299, 0.587, 0.114])
BILINEAR = Image.Resampling.BILINEAR
PIL_MODES = {1: "L", 3: "RGB"}  # uint8 channels Pillow resizes as one image
# A JPEG is decoded at 1/2, 1/4 or 1/8 of its size only where the region to resize keeps
# at least DRAFT_GAP times the output's pixels per side (Pillow's thumbnail() default).
DRAFT_GAP = 2


def sample_rng(seed, epoch, index):
    """Return the augmentation generator of one sample: a pure function of (seed, epoch, index)."""
    return np.random.default_rng([seed, 0, epoch, index])


def batch_rng(seed, epoch, batch, rank=0):
    """The generator of one training batch's mix: a function of (seed, epoch, batch, rank)."""
    return np.random.default_rng([seed, 3, epoch, batch, rank])


def to_float(img):
    """Scale uint8 pixels to float32 in [0, 1]; float images pass through."""
    return img.astype(np.float32) / 255.0 if img.dtype == np.uint8 else img


def to_gray(img):
    """Convert a uint8 HxWx3 RGB image to HxWx1 luma (ITU-R 601, as Pillow's "L")."""
    return (img.astype(np.float32) @ LUMA + 0.5).astype(np.uint8)[..., None]


def is_file(img):
    """Whether img is an image file to decode (imagefolder.ImageFile), not an array."""
    return hasattr(img, "decode")


def image_hw(img):
    """(height, width) of an HxWxC array or of an ImageFile's full image."""
    if is_file(img):
        width, height = img.size
        return height, width
    return img.shape[:2]


def resize(img, hw):
    """Resize an HxWxC image (uint8 or float32) or an ImageFile to hw with Pillow's
    bilinear filter."""
    if is_file(img):
        return resize_file(img, hw)
    h, w = hw
    if img.shape[:2] == (h, w):
        return img
    if img.dtype == np.uint8 and img.shape[2] in PIL_MODES:
        # Pillow resizes each band of an "RGB" image exactly as an "L" image of it
        pil = Image.fromarray(img if img.shape[2] == 3 else img[..., 0])
        return np.asarray(pil.resize((w, h), BILINEAR)).reshape(h, w, -1)
    bands = [
        Image.fromarray(np.ascontiguousarray(img[..., c])) for c in range(img.shape[2])
    ]
    resized = [np.asarray(b.resize((w, h), BILINEAR)) for b in bands]
    return np.stack(resized, axis=-1)


def draft_scale(box_w, box_h, out_w, out_h):
    """The largest JPEG decoding scale 1/8, 1/4 or 1/2 (as 8, 4, 2) that leaves a box of
    box_w x box_h pixels DRAFT_GAP times out_w x out_h; else 1 (a full decode)."""
    for scale in (8, 4, 2):
        if min(box_w / out_w, box_h / out_h) >= DRAFT_GAP * scale:
            return scale
    return 1


def resize_file(source, hw, box=None):
    """Decode an ImageFile and resize its box (left, top, right, bottom; default: the whole
    image) to hw as resize() of the crop would; a JPEG whose box shrinks by DRAFT_GAP * 2
    or more is decoded at a reduced size and the box scaled to it exactly."""
    h, w = hw
    box = box or (0, 0, *source.size)
    img, scale = source.decode(draft_scale(box[2] - box[0], box[3] - box[1], w, h))
    bounds, inner = box, None
    if scale > 1:
        edges = [c / scale for c in box]
        bounds = (
            math.floor(edges[0]),
            math.floor(edges[1]),
            min(math.ceil(edges[2]), img.width),
            min(math.ceil(edges[3]), img.height),
        )
        inner = tuple(e - b for e, b in zip(edges, bounds[:2] * 2, strict=True))
    if bounds != (0, 0, *img.size):
        img = img.crop(bounds)
    return np.asarray(img.resize((w, h), BILINEAR, box=inner))


def resize_shorter(img, size):
    """Resize so the shorter side is size, keeping the aspect ratio."""
    h, w = image_hw(img)
    if h <= w:
        return resize(img, (size, max(1, round(w * size / h))))
    return resize(img, (max(1, round(h * size / w)), size))


def center_crop(img, size):
    """Crop the central size x size window (offsets rounded down)."""
    h, w = img.shape[:2]
    top, left = (h - size) // 2, (w - size) // 2
    return img[top : top + size, left : left + size]


def random_crop(img, size, rng):
    """Crop a size x size window at a uniformly random position."""
    h, w = img.shape[:2]
    top, left = rng.integers(0, h - size + 1), rng.integers(0, w - size + 1)
    return img[top : top + size, left : left + size]


def resized_crop_box(height, width, scale, ratio, rng):
    """(top, left, h, w) of torchvision's RandomResizedCrop: up to 10 boxes of a uniform
    fraction `scale` of the area and a log-uniform aspect `ratio`, the first that fits taken at
    a uniform position; else the central crop of the image clamped to the ratio range."""
    area, log_ratio = height * width, (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(ATTEMPTS):
        target = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(log_ratio[0], log_ratio[1]))
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            return top, left, h, w
    h, w = height, width
    if width / height < min(ratio):
        h = round(width / min(ratio))
    elif width / height > max(ratio):
        w = round(height * max(ratio))
    return (height - h) // 2, (width - w) // 2, h, w


def random_resized_crop(img, size, scale, ratio, rng):
    """A resized_crop_box() crop resized to size x size (Pillow's bilinear filter)."""
    top, left, h, w = resized_crop_box(*image_hw(img), scale, ratio, rng)
    if is_file(img):
        return resize_file(img, (size, size), (left, top, left + w, top + h))
    return resize(img[top : top + h, left : left + w], (size, size))


def erasing_box(height, width, scale, ratio, rng):
    """(top, left, h, w) of torchvision's RandomErasing, or None: up to 10 boxes of a uniform
    fraction `scale` of the area and a log-uniform aspect h / w in `ratio`, the first smaller
    than the image taken at a uniform position."""
    area, log_ratio = height * width, (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(ATTEMPTS):
        erased = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(log_ratio[0], log_ratio[1]))
        h, w = round(math.sqrt(erased * aspect)), round(math.sqrt(erased / aspect))
        if h < height and w < width:
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            return top, left, h, w
    return None


def random_erasing(img, rng, p, scale, ratio, value):
    """With probability p, an erasing_box() of the image (as float) set to value."""
    if rng.random() >= p:
        return img
    box = erasing_box(*img.shape[:2], scale, ratio, rng)
    if box is None:
        return img
    top, left, h, w = box
    out = np.array(to_float(img), dtype=np.float32)
    out[top : top + h, left : left + w] = value
    return out


def hflip(img, rng, p=0.5):
    """Mirror left-right with probability p."""
    return img[:, ::-1] if rng.random() < p else img


def pca_lighting(img, alpha):
    """Add sum_i alpha_i * eigval_i * eigvec_i to every pixel of a [0, 1] RGB image."""
    return to_float(img) + (EIGVEC @ (alpha * EIGVAL)).astype(np.float32)


def normalize(img, mean, std):
    """Subtract the channel mean and divide by the channel std ([0, 1] pixels), a row
    of whole pixels at a time (long NumPy loops; the values of a per-pixel broadcast)."""
    width = img.shape[-2]
    mean = np.tile(np.asarray(mean, np.float32), width)
    std = np.tile(np.asarray(std, np.float32), width)
    out = to_float(img).reshape(-1, mean.size) - mean
    out /= std
    return out.reshape(img.shape)


class Normalize:
    """normalize() as a pipeline step."""

    def __init__(self, mean, std):
        """Keep the channels' mean and std."""
        self.mean, self.std = mean, std

    def __call__(self, img, rng):
        """normalize(img, mean, std): a contiguous float32 array."""
        return normalize(img, self.mean, self.std)


def ten_crop(img, size):
    """Return the four corner and the centre size x size crops and their mirrors: 10xHxWxC."""
    h, w = img.shape[:2]
    corners = [(0, 0), (0, w - size), (h - size, 0), (h - size, w - size)]
    crops = [img[t : t + size, x : x + size] for t, x in corners] + [
        center_crop(img, size)
    ]
    return np.stack(crops + [c[:, ::-1] for c in crops])


def mixup(x, targets, lam):
    """torchvision's MixUp: every image and target blended with the batch's next (rolled by 1)."""
    lam = np.float32(lam)
    mixed = lam * x + (1 - lam) * np.roll(x, 1, axis=0)
    return mixed, lam * targets + (1 - lam) * np.roll(targets, 1, axis=0)


def cutmix_box(height, width, lam, rng):
    """(y1, y2, x1, x2) of torchvision's CutMix box: centre uniform over the pixels, half-sides
    int(0.5 * sqrt(1 - lam) * side), clipped to the image."""
    centre_x, centre_y = int(rng.integers(0, width)), int(rng.integers(0, height))
    half = 0.5 * math.sqrt(1.0 - lam)
    half_w, half_h = int(half * width), int(half * height)
    x1, x2 = max(centre_x - half_w, 0), min(centre_x + half_w, width)
    y1, y2 = max(centre_y - half_h, 0), min(centre_y + half_h, height)
    return y1, y2, x1, x2


def cutmix(x, targets, box):
    """torchvision's CutMix: the box of the batch's next image pasted in; the targets blended
    by the share of the image left unpasted."""
    y1, y2, x1, x2 = box
    mixed = x.copy()
    mixed[:, y1:y2, x1:x2] = np.roll(x, 1, axis=0)[:, y1:y2, x1:x2]
    kept = np.float32(1 - (y2 - y1) * (x2 - x1) / (x.shape[1] * x.shape[2]))
    return mixed, kept * targets + (1 - kept) * np.roll(targets, 1, axis=0)


def mix_entries(augment):
    """The batch-level entries (mixup, cutmix) of TRAIN["augment"]."""
    return [e for e in augment if e["name"] in MIXES]


def mix_batch(x, labels, num_classes, entries, rng):
    """(images, float32 soft targets) of an NHWC batch: one of the entries chosen uniformly (as
    torchvision's RandomChoice), lambda ~ Beta(alpha, alpha); (x, labels) without entries."""
    if not entries:
        return x, labels
    entry = entries[int(rng.integers(0, len(entries)))]
    lam = float(rng.beta(entry["alpha"], entry["alpha"]))
    targets = np.eye(num_classes, dtype=np.float32)[np.asarray(labels)]
    if entry["name"] == "mixup":
        return mixup(x, targets, lam)
    return cutmix(x, targets, cutmix_box(x.shape[1], x.shape[2], lam, rng))


def step(fn, **kwargs):
    """A deterministic pipeline step: fn(img, **kwargs), ignoring the generator."""
    return partial(_apply, fn, kwargs)


def _apply(fn, kwargs, img, rng):
    """Call a deterministic step."""
    return fn(img, **kwargs)


def _random_crop(img, rng, size):
    """Random crop step."""
    return random_crop(img, size, rng)


def _random_resized_crop(img, rng, size, scale, ratio):
    """Random resized crop step."""
    return random_resized_crop(img, size, scale, ratio, rng)


def _pca_lighting(img, rng, std):
    """PCA lighting step with alpha ~ N(0, std) per eigenvector."""
    return pca_lighting(img, rng.normal(0.0, std, 3))


def reads_files(fn):
    """Whether a pipeline step takes an ImageFile: the resizes, which decode it."""
    target = fn.args[0] if getattr(fn, "func", None) is _apply else fn
    return getattr(target, "func", target) in (
        resize,
        resize_shorter,
        _random_resized_crop,
    )


class Pipeline:
    """A picklable sequence of steps img, rng -> img ending in a contiguous float32 array;
    an ImageFile is decoded by the first step that reads files, or fully before any other."""

    def __init__(self, steps):
        """Keep the steps."""
        self.steps = steps

    def __call__(self, img, rng=None):
        """Apply every step in order; random steps draw from rng (default: a fresh generator)."""
        rng = np.random.default_rng() if rng is None else rng
        for fn in self.steps:
            if is_file(img) and not reads_files(fn):
                img = np.asarray(img)
            img = fn(img, rng)
        return np.ascontiguousarray(to_float(np.asarray(img)), dtype=np.float32)


def crop_entry(augment, input_hw):
    """Return the random/center crop entry (or None), checking it produces input_hw."""
    crops = [e for e in augment if e["name"] in CROPS]
    if len(crops) > 1:
        raise ValueError(f"augment has {len(crops)} crop entries; use at most one")
    if not crops:
        return None
    crop = crops[0]
    if (crop["size"], crop["size"]) != tuple(input_hw):
        raise ValueError(
            f"{crop['name']} size {crop['size']} does not give the input {input_hw}"
        )
    if crop.get("from", crop["size"]) < crop["size"]:
        raise ValueError(
            f"{crop['name']} from={crop['from']} is smaller than size={crop['size']}"
        )
    return crop


def check_channels(augment, channels):
    """Reject entries that do not fit the number of image channels."""
    for entry in augment:
        if entry["name"] == "pca_lighting" and channels != 3:
            raise ValueError(f"pca_lighting needs RGB input, not {channels} channel(s)")
        if (
            entry["name"] == "normalize"
            and not len(entry["mean"]) == len(entry["std"]) == channels
        ):
            raise ValueError(f"normalize needs {channels} mean and std values: {entry}")


def train_steps(entry):
    """The steps of one TRAIN["augment"] entry."""
    name = entry["name"]
    if name == "random_resized_crop":
        args = {k: entry[k] for k in ("size", "scale", "ratio")}
        return [partial(_random_resized_crop, **args)]
    if name in CROPS:
        size = entry["size"]
        if name == "random_crop":
            crop = partial(_random_crop, size=size)
        else:
            crop = step(center_crop, size=size)
        return [step(resize_shorter, size=entry.get("from", size)), crop]
    if name == "hflip":
        return [partial(hflip, p=entry.get("p", 0.5))]
    if name == "pca_lighting":
        return [partial(_pca_lighting, std=entry["std"])]
    if name == "normalize":
        return [Normalize(entry["mean"], entry["std"])]
    if name == "random_erasing":
        args = {k: entry[k] for k in ("p", "scale", "ratio", "value")}
        return [partial(random_erasing, **args)]
    if name == "trivial_augment":
        return [trivial_augment]
    if name == "rand_augment":
        args = {k: entry[k] for k in ("num_ops", "magnitude")}
        return [partial(rand_augment, **args)]
    if name == "auto_augment":
        return [partial(auto_augment, policy=entry["policy"])]
    if name in MIXES:
        return []  # batch-level: mix_batch
    raise ValueError(f"unknown augment {name!r}")


def eval_steps(augment, crop, input_hw, tencrop):
    """Resize shorter side to `from`, centre (or ten) crop, then normalize as in training."""
    if crop is None and tencrop:
        raise ValueError("ten-crop evaluation needs a random_crop or center_crop entry")
    if crop is None:
        steps = [step(resize, hw=tuple(input_hw))]
    else:
        size = crop["size"]
        steps = [step(resize_shorter, size=crop.get("from", size))]
        steps.append(step(ten_crop if tencrop else center_crop, size=size))
    norm = [e for e in augment if e["name"] == "normalize"]
    return steps + [Normalize(e["mean"], e["std"]) for e in norm]


def build_pipeline(augment, input_hw, train, channels=3, tencrop=False):
    """Turn TRAIN["augment"] into a callable (uint8 HxWx3, rng) -> float32 HxWxC image.

    Training applies the entries in order (with a resize to input_hw first when there is no
    crop entry); evaluation resizes, centre-crops (or ten-crops: 10xHxWxC) and normalizes.
    """
    crop = crop_entry(augment, input_hw)
    check_channels(augment, channels)
    steps = [step(to_gray)] if channels == 1 else []
    if not train:
        return Pipeline(steps + eval_steps(augment, crop, input_hw, tencrop))
    if crop is None:
        steps.append(step(resize, hw=tuple(input_hw)))
    for entry in augment:
        steps += train_steps(entry)
    return Pipeline(steps)
