"""The PyTorch trainer's two input paths side by side on a JPEG folder this script writes:
`--decode cpu` (workers decode with Pillow and augment in NumPy; the batch is uploaded) and
`--decode gpu` (workers read the bytes and draw the augmentation; torchvision.io.decode_jpeg
and the augmentation run on --device). Same files, augmentation (shorter side to 256, random
224 crop, flip, normalize), DataLoader settings and sample keys; the two feeds alternate, one
epoch each, --repeats times. Prints images/s of each (data only, no model), their ratio (the
median of the per-repeat ratios) and how far the device path's pixels are from the CPU
pipeline's (max and mean absolute difference in levels of an 8-bit pixel, after normalize).

    PYTHONPATH=$PWD .venv/bin/python bench/gpu_decode.py --device cuda --workers 8

On a CPU-only machine --device cpu runs the same code (the device path's decode on the CPU).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "backends" / "common"), str(ROOT / "backends" / "torch" / "runtime")]

from augment import build_pipeline, sample_rng  # noqa: E402
from gpu_decode import EncodedImages, augment_batch, device_ops  # noqa: E402
from imagefolder import ImageFolderDataset  # noqa: E402

SEED = 0
NORM = {"name": "normalize", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
AUGMENT = [{"name": "random_crop", "size": 224, "from": 256}, {"name": "hflip"}, NORM]


def write_jpegs(folder, count):
    """count 500 x 375 JPEGs (quality 90) of smooth colour fields with noise."""
    rng = np.random.default_rng(0)
    rows, cols = np.mgrid[0:375, 0:500] / 500.0
    paths = []
    for i in range(count):
        a, b = rng.uniform(-8, 8, (2, 3))
        field = 127 + 100 * np.sin(a * rows[..., None] + b * cols[..., None] + i)
        noise = rng.normal(0, 12, field.shape)
        path = folder / f"{i:05d}.jpg"
        Image.fromarray(np.clip(field + noise, 0, 255).astype(np.uint8)).save(path, quality=90)
        paths.append((str(path), 0))
    return ImageFolderDataset(paths)


class CpuSamples(torch.utils.data.Dataset):
    """--decode cpu's dataset: (epoch, index) -> (float32 HxWxC image, label)."""

    def __init__(self, data):
        """Wrap an ImageFolderDataset with the training pipeline."""
        self.data, self.pipeline = data, build_pipeline(AUGMENT, (224, 224), True)

    def __len__(self):
        """Number of images."""
        return len(self.data)

    def __getitem__(self, key):
        """Decode and augment one image."""
        epoch, index = key
        image, label = self.data[index]
        return self.pipeline(image, sample_rng(SEED, epoch, index)), label


def loader(dataset, keys, args, device):
    """The trainer's DataLoader settings over the given keys."""
    workers = args.workers
    return DataLoader(
        dataset,
        batch_size=args.batch,
        sampler=keys,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        collate_fn=getattr(dataset, "collate", None),
        persistent_workers=workers > 0,
        prefetch_factor=args.prefetch_factor if workers else None,
    )


def cpu_batches(loader_, device):
    """--decode cpu: NHWC batches uploaded."""
    for x, _ in loader_:
        yield x.to(device, non_blocking=True)


def gpu_batches(loader_, device):
    """--decode gpu: batches decoded and augmented on the device."""
    for batch, _ in loader_:
        yield augment_batch(loader_.dataset.ops, batch, device)


def images_per_s(batches, device):
    """Images/s of one pass over the batches."""
    start, count = time.perf_counter(), 0
    for x in batches:
        count += len(x)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return count / (time.perf_counter() - start)


def pixel_levels(cpu_loader, gpu_loader, device):
    """(max, mean) |device path - CPU pipeline| of the first batch, in 8-bit levels."""
    want = next(iter(cpu_loader))[0].to(device)
    got = next(gpu_batches(gpu_loader, device))
    level = 1 / 255 / torch.tensor(NORM["std"], device=device)
    diff = (got - want).abs() / level
    return diff.max().item(), diff.mean().item()


def main():
    """Write the folder, run the two feeds alternately, print the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--images", type=int, default=256)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--prefetch-factor", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        data = write_jpegs(Path(tmp), args.images)
        keys = [(0, i) for i in range(len(data))]
        ops = device_ops(AUGMENT, (224, 224), True)
        cpu = loader(CpuSamples(data), keys, args, device)
        gpu = loader(EncodedImages(data, ops, SEED), keys, args, device)
        levels = pixel_levels(cpu, gpu, device)
        rates = [
            (
                images_per_s(cpu_batches(cpu, device), device),
                images_per_s(gpu_batches(gpu, device), device),
            )
            for _ in range(args.repeats)
        ]
    ratio = statistics.median(g / c for c, g in rates)
    print(f"{args.images} JPEGs 500 x 375, batch {args.batch}, {args.workers} workers, {device}")
    print("| repeat | --decode cpu img/s | --decode gpu img/s | gpu / cpu |")
    print("|---|---|---|---|")
    for i, (c, g) in enumerate(rates, 1):
        print(f"| {i} | {c:.0f} | {g:.0f} | {g / c:.2f} |")
    print(f"median ratio {ratio:.2f}; pixels: max {levels[0]:.2f}, mean {levels[1]:.3f} levels")


if __name__ == "__main__":
    main()
