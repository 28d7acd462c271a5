"""The image pipeline as it was before the fast path (full decode, per-band resize, float
normalisation), kept as an independent reference for its crops, flips, normalisation and
grey specs: the trainers' pipeline must give these pixels for the same (seed, epoch, index)."""

import math

import numpy as np
from PIL import Image

LUMA = np.array([0.299, 0.587, 0.114])


def load_image(path):
    """The full decode: uint8 HxWx3 RGB."""
    with Image.open(path) as img:
        img.load()
        return np.asarray(img.convert("RGB"))


def to_float(img):
    """uint8 to float32 in [0, 1]."""
    return img.astype(np.float32) / 255.0 if img.dtype == np.uint8 else img


def to_gray(img):
    """ITU-R 601 luma of uint8 RGB, HxWx1."""
    return (img.astype(np.float32) @ LUMA + 0.5).astype(np.uint8)[..., None]


def resize(img, hw):
    """Each band resized on its own as a Pillow image, bilinear."""
    h, w = hw
    if img.shape[:2] == (h, w):
        return img
    bands = [Image.fromarray(np.ascontiguousarray(img[..., c])) for c in range(img.shape[2])]
    return np.stack(
        [np.asarray(b.resize((w, h), Image.Resampling.BILINEAR)) for b in bands], axis=-1
    )


def resize_shorter(img, size):
    """Shorter side to size."""
    h, w = img.shape[:2]
    if h <= w:
        return resize(img, (size, max(1, round(w * size / h))))
    return resize(img, (max(1, round(h * size / w)), size))


def center_crop(img, size):
    """Central window, offsets rounded down."""
    h, w = img.shape[:2]
    top, left = (h - size) // 2, (w - size) // 2
    return img[top : top + size, left : left + size]


def random_crop(img, size, rng):
    """Uniform window: top, then left."""
    h, w = img.shape[:2]
    top, left = rng.integers(0, h - size + 1), rng.integers(0, w - size + 1)
    return img[top : top + size, left : left + size]


def resized_crop_box(height, width, scale, ratio, rng):
    """torchvision's RandomResizedCrop box (top, left, h, w), 10 attempts then the centre."""
    area, log_ratio = height * width, (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(log_ratio[0], log_ratio[1]))
        w, h = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
    h, w = height, width
    if width / height < min(ratio):
        h = round(width / min(ratio))
    elif width / height > max(ratio):
        w = round(height * max(ratio))
    return (height - h) // 2, (width - w) // 2, h, w


def hflip(img, rng, p):
    """Mirror with probability p."""
    return img[:, ::-1] if rng.random() < p else img


def normalize(img, mean, std):
    """(x / 255 - mean) / std in float32."""
    return (to_float(img) - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)


def ten_crop(img, size):
    """Four corners, centre, and their mirrors."""
    h, w = img.shape[:2]
    corners = [(0, 0), (0, w - size), (h - size, 0), (h - size, w - size)]
    crops = [img[t : t + size, x : x + size] for t, x in corners] + [center_crop(img, size)]
    return np.stack(crops + [c[:, ::-1] for c in crops])


def train_step(img, entry, rng):
    """One TRAIN["augment"] entry of the crops, flips and normalisation."""
    name = entry["name"]
    if name == "random_resized_crop":
        top, left, h, w = resized_crop_box(*img.shape[:2], entry["scale"], entry["ratio"], rng)
        return resize(img[top : top + h, left : left + w], (entry["size"],) * 2)
    if name in ("random_crop", "center_crop"):
        img = resize_shorter(img, entry.get("from", entry["size"]))
        if name == "random_crop":
            return random_crop(img, entry["size"], rng)
        return center_crop(img, entry["size"])
    if name == "hflip":
        return hflip(img, rng, entry.get("p", 0.5))
    assert name == "normalize", name
    return normalize(img, entry["mean"], entry["std"])


def pipeline(img, augment, hw, train, rng, channels=3, tencrop=False):
    """The pipeline of build_pipeline(augment, hw, train, channels, tencrop) on img."""
    img = to_gray(img) if channels == 1 else img
    crops = [e for e in augment if "crop" in e["name"]]
    if train:
        img = img if crops else resize(img, hw)
        for entry in augment:
            img = train_step(img, entry, rng)
    elif crops:
        size = crops[0]["size"]
        img = resize_shorter(img, crops[0].get("from", size))
        img = ten_crop(img, size) if tencrop else center_crop(img, size)
    else:
        img = resize(img, hw)
    for entry in [e for e in augment if e["name"] == "normalize" and not train]:
        img = normalize(img, entry["mean"], entry["std"])
    return np.ascontiguousarray(to_float(img), dtype=np.float32)
