"""--decode gpu: DataLoader workers read each JPEG's bytes and draw the sample's augmentation
on the CPU, exactly as augment.build_pipeline draws it; the main process decodes the batch on
the device (torchvision.io.decode_jpeg, batched) and augments it there in torch.

Files the device cannot decode as Pillow does (PNG and other formats, CMYK JPEGs, JPEGs with
bytes after their end marker) are decoded on the CPU in the worker (imagefolder.load_image)
and uploaded; so are the embedded synthetic images. The same code runs with device "cpu".
"""

import importlib.util
import io
import re
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

# the runtime beside this file (isort: split keeps one order wherever ruff runs)
# isort: split
from augment import (
    EIGVAL,
    EIGVEC,
    LUMA,
    build_pipeline,
    crop_entry,
    cutmix_box,
    erasing_box,
    resized_crop_box,
    sample_rng,
)
from imagefolder import MAX_ASPECT, DataError, load_image
from trainer_args import UsageError

CPU_ONLY = ("trivial_augment", "rand_augment", "auto_augment")
JPEG_END = b"\xff\xd9"
HEADER_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


def check_decode_device(device):
    """UsageError unless --decode gpu can run: a CUDA training device and torchvision."""
    if not torch.cuda.is_available():
        raise UsageError("--decode gpu: no CUDA device is available; use --decode cpu")
    if device.type != "cuda":
        raise UsageError(
            f"--decode gpu decodes on the CUDA device it trains on, not {device}; "
            "drop --device cpu or use --decode cpu"
        )
    if importlib.util.find_spec("torchvision") is None:
        raise UsageError(
            "--decode gpu needs torchvision; install it or use --decode cpu"
        )
    probe_decoder(device)


def probe_decoder(device):
    """UsageError unless torchvision decodes a small JPEG on the device (a torchvision
    built without the device's decoder fails here, not on the first batch)."""
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 100, 50)).save(buffer, "JPEG")
    data = torch.frombuffer(bytearray(buffer.getvalue()), dtype=torch.uint8)
    try:
        decode_jpegs([data], device)
    except RuntimeError as err:
        raise UsageError(
            f"--decode gpu: torchvision cannot decode JPEGs on {device} "
            f"({decoder_error(err)}); use --decode cpu"
        ) from None


def decode_jpegs(jpegs, device):
    """torchvision.io.decode_jpeg of a list of 1-D uint8 tensors, as RGB, on the device."""
    from torchvision.io import ImageReadMode, decode_jpeg

    return decode_jpeg(jpegs, mode=ImageReadMode.RGB, device=device)


def decoder_error(err):
    """A decode_jpeg error's message without its source location."""
    return re.sub(r"^decode_jpeg, \S+, ", "", str(err).strip()) or type(err).__name__


def to_float(x):
    """uint8 pixels to float32 in [0, 1]; float tensors pass through (augment.to_float)."""
    return x.float() / 255.0 if x.dtype == torch.uint8 else x


def uniform(images):
    """A list of equally shaped images stacked into one tensor; anything else unchanged."""
    if isinstance(images, list) and len({tuple(i.shape) for i in images}) == 1:
        return torch.stack(images)
    return images


def bilinear(x, hw):
    """An NxCxHxW float batch resized to hw: bilinear, antialiased as Pillow's filter."""
    return F.interpolate(x, size=tuple(hw), mode="bilinear", antialias=True)


def resize_batch(images, hw):
    """Pillow's bilinear resize (augment.resize) of an NxCxHxW batch. uint8 images are
    resized as Pillow resizes them: across, rounded to uint8, then down, rounded; float
    images stay float."""
    if tuple(images.shape[-2:]) == tuple(hw):
        return images
    x = images.float()
    if images.dtype != torch.uint8:
        return bilinear(x, hw)
    for size in ((x.shape[-2], hw[1]), hw):
        x = bilinear(x, size).round_().clamp_(0, 255)
    return x.to(torch.uint8)


def resize_image(img, hw):
    """resize_batch of one CxHxW image."""
    return resize_batch(img[None], hw)[0]


def resize_all(images, targets):
    """Each image resized to its target (h, w): one resize_batch per group of images of the
    same size, dtype and target."""
    groups = {}
    for i, (img, hw) in enumerate(zip(images, targets, strict=True)):
        groups.setdefault((img.shape, img.dtype, tuple(hw)), []).append(i)
    resized = [None] * len(images)
    for (_, _, hw), where in groups.items():
        batch = resize_batch(torch.stack([images[i] for i in where]), hw)
        for i, img in zip(where, batch, strict=True):
            resized[i] = img
    return uniform(resized)


def shorter_side_hw(hw, size):
    """(h, w) after augment.resize_shorter(img, size)."""
    h, w = hw
    if h <= w:
        return size, max(1, round(w * size / h))
    return max(1, round(h * size / w)), size


class ImageOp:
    """A step that changes an image's size: applied image by image (sizes may differ)."""

    def draw(self, hw, rng):
        """(the sample's numbers, its size after the step); deterministic steps draw none."""
        return (), self.size_after(hw)

    def size_after(self, hw):
        """The image's (h, w) after the step."""
        return hw

    def apply(self, images, drawn):
        """The step on each image (a list or a batch) with its row of drawn numbers."""
        rows = drawn.long().tolist()
        return uniform(
            [self.apply_one(img, row) for img, row in zip(images, rows, strict=True)]
        )


class PixelOp:
    """A step that keeps the size: applied to a whole batch at once."""

    def draw(self, hw, rng):
        """(the sample's numbers, its size after the step); deterministic steps draw none."""
        return (), hw

    def apply(self, images, drawn):
        """The step on an NxCxHxW batch, or image by image on a list of sizes that differ."""
        device = images[0].device
        drawn = drawn.to(device, non_blocking=True)
        if isinstance(images, list):
            return [
                self.apply_batch(img[None], drawn[i : i + 1])[0]
                for i, img in enumerate(images)
            ]
        return self.apply_batch(images, drawn)


class ToGray(PixelOp):
    """augment.to_gray: ITU-R 601 luma, rounded to uint8."""

    def apply_batch(self, x, drawn):
        """Nx3xHxW uint8 -> Nx1xHxW uint8."""
        luma = torch.as_tensor(LUMA, dtype=torch.float64, device=x.device)
        gray = (x.double() * luma.view(3, 1, 1)).sum(-3, keepdim=True) + 0.5
        return gray.to(torch.uint8)


class Resize(ImageOp):
    """augment.resize to a fixed (h, w)."""

    def __init__(self, hw):
        """Keep the target size."""
        self.hw = tuple(hw)

    def size_after(self, hw):
        """The target size."""
        return self.hw

    def apply(self, images, drawn):
        """Resize the images (those of one size together)."""
        return resize_all(list(images), [self.hw] * len(images))


class ResizeShorter(ImageOp):
    """augment.resize_shorter: the shorter side to size, keeping the aspect ratio."""

    def __init__(self, size):
        """Keep the shorter side's length."""
        self.size = size

    def draw(self, hw, rng):
        """The target size, kept for apply()."""
        target = shorter_side_hw(hw, self.size)
        return target, target

    def apply(self, images, drawn):
        """Resize each image to its target (those of one size together)."""
        return resize_all(list(images), drawn.long().tolist())


class RandomCrop(ImageOp):
    """augment.random_crop: top, then left, uniform."""

    def __init__(self, size):
        """Keep the crop size."""
        self.size = size

    def draw(self, hw, rng):
        """(top, left), drawn as augment.random_crop draws them."""
        (h, w), size = hw, self.size
        top, left = rng.integers(0, h - size + 1), rng.integers(0, w - size + 1)
        return (int(top), int(left)), (size, size)

    def apply_one(self, img, row):
        """Crop one image."""
        top, left = row
        return img[..., top : top + self.size, left : left + self.size]


class CenterCrop(ImageOp):
    """augment.center_crop (offsets rounded down)."""

    def __init__(self, size):
        """Keep the crop size."""
        self.size = size

    def size_after(self, hw):
        """A size x size crop."""
        return self.size, self.size

    def apply_one(self, img, row):
        """Crop one image."""
        h, w = img.shape[-2:]
        top, left = (h - self.size) // 2, (w - self.size) // 2
        return img[..., top : top + self.size, left : left + self.size]


class RandomResizedCrop(ImageOp):
    """augment.random_resized_crop: an augment.resized_crop_box resized to size x size."""

    def __init__(self, size, scale, ratio):
        """Keep the entry's settings."""
        self.size, self.scale, self.ratio = size, scale, ratio

    def draw(self, hw, rng):
        """The box (top, left, h, w)."""
        box = resized_crop_box(*hw, self.scale, self.ratio, rng)
        return box, (self.size, self.size)

    def apply_one(self, img, row):
        """Crop and resize one image."""
        top, left, h, w = row
        return resize_image(img[..., top : top + h, left : left + w], (self.size,) * 2)


class TenCrop(ImageOp):
    """augment.ten_crop: the four corners, the centre and their mirrors (10xCxHxW)."""

    def __init__(self, size):
        """Keep the crop size."""
        self.size = size

    def apply_one(self, img, row):
        """The ten crops of one image."""
        (h, w), s = img.shape[-2:], self.size
        corners = [(0, 0), (0, w - s), (h - s, 0), (h - s, w - s)]
        corners.append(((h - s) // 2, (w - s) // 2))
        crops = [img[..., t : t + s, x : x + s] for t, x in corners]
        return torch.stack(crops + [c.flip(-1) for c in crops])


class HFlip(PixelOp):
    """augment.hflip: mirror with probability p."""

    def __init__(self, p):
        """Keep the probability."""
        self.p = p

    def draw(self, hw, rng):
        """Whether to mirror."""
        return (float(rng.random() < self.p),), hw

    def apply_batch(self, x, drawn):
        """Mirror the drawn images."""
        return torch.where(drawn.view(-1, 1, 1, 1) > 0, x.flip(-1), x)


class PCALighting(PixelOp):
    """augment.pca_lighting with alpha ~ N(0, std) per eigenvector."""

    def __init__(self, std):
        """Keep the noise's standard deviation."""
        self.std = std

    def draw(self, hw, rng):
        """The float32 RGB offset, computed as augment.pca_lighting computes it."""
        alpha = rng.normal(0.0, self.std, 3)
        return tuple((EIGVEC @ (alpha * EIGVAL)).astype(np.float32).tolist()), hw

    def apply_batch(self, x, drawn):
        """Add each image's offset."""
        return to_float(x) + drawn.float().view(-1, 3, 1, 1)


class Normalize(PixelOp):
    """augment.normalize: (x - mean) / std per channel."""

    def __init__(self, mean, std):
        """Keep the channel statistics as float32."""
        self.mean, self.std = (np.asarray(v, np.float32) for v in (mean, std))

    def apply_batch(self, x, drawn):
        """Normalize (also a batch of ten crops)."""
        mean, std = (
            torch.as_tensor(v, device=x.device).view(-1, 1, 1)
            for v in (self.mean, self.std)
        )
        return (to_float(x) - mean) / std


class RandomErasing(PixelOp):
    """augment.random_erasing: with probability p an augment.erasing_box set to value."""

    def __init__(self, p, scale, ratio, value):
        """Keep the entry's settings."""
        self.p, self.scale, self.ratio, self.value = p, scale, ratio, value

    def draw(self, hw, rng):
        """(top, left, h, w) of the erased box; h = w = 0 when nothing is erased."""
        if rng.random() >= self.p:
            return (0, 0, 0, 0), hw
        box = erasing_box(*hw, self.scale, self.ratio, rng)
        return (0, 0, 0, 0) if box is None else box, hw

    def apply_batch(self, x, drawn):
        """Erase each image's box (images nothing is erased from keep their dtype)."""
        if not bool((drawn[:, 2] > 0).any()):
            return x
        top, left, h, w = (drawn[:, i].long().view(-1, 1, 1, 1) for i in range(4))
        rows = torch.arange(x.shape[-2], device=x.device).view(1, 1, -1, 1)
        cols = torch.arange(x.shape[-1], device=x.device).view(1, 1, 1, -1)
        inside = (rows >= top) & (rows < top + h) & (cols >= left) & (cols < left + w)
        value = torch.tensor(self.value, dtype=torch.float32, device=x.device)
        return torch.where(inside, value, to_float(x))


def train_ops(entry):
    """The device steps of one TRAIN["augment"] entry (augment.train_steps)."""
    name = entry["name"]
    if name in CPU_ONLY:
        raise ValueError(f"{name} runs only on the CPU; use --decode cpu")
    if name == "random_resized_crop":
        return [RandomResizedCrop(entry["size"], entry["scale"], entry["ratio"])]
    if name in ("random_crop", "center_crop"):
        size = entry["size"]
        crop = RandomCrop(size) if name == "random_crop" else CenterCrop(size)
        return [ResizeShorter(entry.get("from", size)), crop]
    if name == "hflip":
        return [HFlip(entry.get("p", 0.5))]
    if name == "pca_lighting":
        return [PCALighting(entry["std"])]
    if name == "normalize":
        return [Normalize(entry["mean"], entry["std"])]
    if name == "random_erasing":
        return [RandomErasing(*(entry[k] for k in ("p", "scale", "ratio", "value")))]
    return []  # mixup, cutmix: batch-level, mix_on_device


def eval_ops(augment, crop, input_hw, tencrop):
    """augment.eval_steps: resize, centre (or ten) crop, normalize."""
    if crop is None:
        ops = [Resize(input_hw)]
    else:
        size = crop["size"]
        ops = [ResizeShorter(crop.get("from", size))]
        ops.append(TenCrop(size) if tencrop else CenterCrop(size))
    norm = [e for e in augment if e["name"] == "normalize"]
    return ops + [Normalize(e["mean"], e["std"]) for e in norm]


def device_ops(augment, input_hw, train, channels=3, tencrop=False):
    """The steps of build_pipeline(augment, ...) on the device, drawing what it draws;
    ValueError for entries that run only on the CPU (and for build_pipeline's own)."""
    build_pipeline(augment, input_hw, train, channels, tencrop)  # its checks
    crop = crop_entry(augment, input_hw)
    ops = [ToGray()] if channels == 1 else []
    if not train:
        return ops + eval_ops(augment, crop, input_hw, tencrop)
    if crop is None:
        ops.append(Resize(input_hw))
    for entry in augment:
        ops += train_ops(entry)
    return ops


def encoded_image(path):
    """(1-D uint8 JPEG bytes, (h, w)) of a file the device decodes as Pillow does (an RGB
    or gray JPEG ending in its end marker, of an aspect the pipeline accepts); else (Pillow's
    uint8 HxWx3 pixels, (h, w)), decoded here; unreadable files raise DataError."""
    try:
        data = Path(path).read_bytes()
        with Image.open(io.BytesIO(data)) as img:
            (w, h), kind = img.size, (img.format, img.mode)
    except HEADER_ERRORS:
        kind = None
    jpeg = kind in (("JPEG", "RGB"), ("JPEG", "L")) and data.endswith(JPEG_END)
    if jpeg and max(w, h) <= MAX_ASPECT * min(w, h):
        return torch.frombuffer(bytearray(data), dtype=torch.uint8), (h, w)
    pixels = np.array(load_image(path))
    return torch.from_numpy(pixels), pixels.shape[:2]


class EncodedImages(torch.utils.data.Dataset):
    """(epoch, index) -> (JPEG bytes or uint8 HxWx3 pixels, the ops' draws, label, source):
    the draws come from sample_rng(seed, epoch, index), as the CPU pipeline's."""

    def __init__(self, data, ops, seed):
        """Wrap an ImageFolderDataset (read from its items' paths) or a dataset of
        (uint8 HxWx3, label)."""
        self.data, self.ops, self.seed = data, ops, seed

    def __len__(self):
        """Number of images."""
        return len(self.data)

    def read(self, index):
        """(image tensor, (h, w), label, source) of one item, JPEGs left encoded."""
        if hasattr(self.data, "items"):  # an ImageFolderDataset: (path, label) pairs
            path, label = self.data.items[index]
            image, hw = encoded_image(path)
            return image, hw, label, path
        pixels, label = self.data[index]
        return torch.from_numpy(np.array(pixels)), pixels.shape[:2], label, f"#{index}"

    def __getitem__(self, key):
        """Read image `index` and draw its augmentation with the generator of the key."""
        epoch, index = key
        image, hw, label, source = self.read(index)
        rng, draws = sample_rng(self.seed, epoch, index), []
        for op in self.ops:
            drawn, hw = op.draw(hw, rng)
            draws.append(drawn)
        return image, draws, label, source

    @staticmethod
    def collate(samples):
        """({"images": list, "draws": an Nxk float64 tensor per op, "sources"}, labels)."""
        images, draws, labels, sources = zip(*samples, strict=True)
        per_op = [
            torch.tensor(column, dtype=torch.float64)
            for column in zip(*draws, strict=True)
        ]
        batch = {"images": list(images), "draws": per_op, "sources": list(sources)}
        return batch, torch.tensor(labels)


def decode_failure(jpegs, sources, device, err):
    """DataError naming the first JPEG of a failed batch decode that fails alone."""
    culprit = sources[0]
    for data, source in zip(jpegs, sources, strict=True):
        try:
            decode_jpegs([data], device)
        except RuntimeError as alone:
            culprit, err = source, alone
            break
    return DataError(
        f"{culprit}: cannot decode JPEG ({decoder_error(err)}); remove or replace the file"
    )


def decode_images(images, sources, device):
    """CxHxW uint8 images on the device: the JPEGs decoded there in one batched call,
    the pixels uploaded."""
    out = [
        img.to(device, non_blocking=True).permute(2, 0, 1) if img.dim() == 3 else None
        for img in images
    ]
    where = [i for i, img in enumerate(images) if img.dim() == 1]
    if where:
        jpegs = [images[i] for i in where]
        try:
            decoded = decode_jpegs(jpegs, device)
        except RuntimeError as err:
            failure = decode_failure(jpegs, [sources[i] for i in where], device, err)
            raise failure from None
        for i, img in zip(where, decoded, strict=True):
            out[i] = img
    return out


def augment_batch(ops, batch, device):
    """A collated batch decoded and augmented on the device: float32 NxHxWxC (Nx10xHxWxC
    for ten crops), as the CPU pipeline's batch."""
    x = uniform(decode_images(batch["images"], batch["sources"], device))
    for op, drawn in zip(ops, batch["draws"], strict=True):
        x = op.apply(x, drawn)
    return to_float(uniform(x)).movedim(-3, -1)


def device_batches(loader, device):
    """The batches of a DataLoader over EncodedImages, augmented on the device."""
    ops = loader.dataset.ops
    for batch, labels in loader:
        yield augment_batch(ops, batch, device), labels


def mix_on_device(x, labels, num_classes, entries, rng):
    """augment.mix_batch on a device batch (NxHxWxC): the same draws, the same float32
    arithmetic; (x, labels) without entries."""
    if not entries:
        return x, labels
    entry = entries[int(rng.integers(0, len(entries)))]
    lam = float(rng.beta(entry["alpha"], entry["alpha"]))
    targets = F.one_hot(labels.to(x.device).long(), num_classes).float()
    if entry["name"] == "mixup":
        keep = np.float32(lam)
        x = float(keep) * x + float(1 - keep) * x.roll(1, 0)
    else:
        y1, y2, x1, x2 = cutmix_box(x.shape[1], x.shape[2], lam, rng)
        x = x.clone()
        x[:, y1:y2, x1:x2] = x.roll(1, 0)[:, y1:y2, x1:x2]
        keep = np.float32(1 - (y2 - y1) * (x2 - x1) / (x.shape[1] * x.shape[2]))
    return x, float(keep) * targets + float(1 - keep) * targets.roll(1, 0)
