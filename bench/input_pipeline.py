"""Per-core images/s of the trainers' image pipeline against torchvision's, side by side.

Makes its own JPEG folders in a temporary directory (photo-sized 500 x 375 and large
2048 x 1536 images, quality 90, with smooth shading, edges and texture), then times one pass
over a folder per contender, the contenders alternating round after round in one process
(torch.set_num_threads(1)):

- ours: backends/common/imagefolder.py's ImageFolderDataset + augment.py's build_pipeline,
  the path both trainers take (dataset[i], then the pipeline with sample_rng(seed, 0, i));
- tv-folder: torchvision.datasets.ImageFolder (PIL decode) + transforms.v2 on the PIL image,
  then ToImage + ToDtype(float32, scale) + Normalize (torchvision's reference recipe);
- tv-decode: torchvision.io.decode_jpeg + transforms.v2 on the uint8 tensor.

Every contender turns a file into a normalised float32 224 x 224 x 3 image (ours HWC, as the
trainers collate it; torchvision's CHW). Prints images/s (median over rounds) and ours / peer
(the median of the per-round ratios) for the train transforms (shorter side to 256, random
224 crop, flip, normalize; random_resized_crop 224, flip, normalize) and the eval transform
(shorter side to 256, centre 224 crop, normalize), and how far the reduced-size JPEG decodes
of the large photos move the pixels (uint8, before normalisation) from a full decode.

    .venv/bin/python bench/input_pipeline.py [--rounds 5] [--photos 300] [--large 40]
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
from torchvision import datasets, io
from torchvision.transforms import v2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "backends" / "common"))

import augment  # noqa: E402  (the runtime modules import their siblings by bare name)
import imagefolder  # noqa: E402

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
NORMALIZE = {"name": "normalize", "mean": MEAN, "std": STD}
TRANSFORMS = {
    "train: resize 256, random crop 224, flip": [
        {"name": "random_crop", "size": 224, "from": 256},
        {"name": "hflip"},
        NORMALIZE,
    ],
    "train: random_resized_crop 224, flip": [
        {
            "name": "random_resized_crop",
            "size": 224,
            "scale": (0.08, 1.0),
            "ratio": (3 / 4, 4 / 3),
        },
        {"name": "hflip"},
        NORMALIZE,
    ],
    "eval: resize 256, centre crop 224": [
        {"name": "center_crop", "size": 224, "from": 256},
        NORMALIZE,
    ],
}


def photo(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A uint8 HxWx3 picture with smooth shading, hard-edged shapes and fine texture."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32) / max(width, height)
    img = np.zeros((height, width, 3), np.float32)
    for c in range(3):
        fx, fy, phase = rng.uniform(0.5, 4.0, 3)
        img[..., c] = 110 + 70 * np.sin(2 * np.pi * (fx * x + fy * y) + phase * 2)
    for _ in range(12):
        cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 0.75), rng.uniform(0.03, 0.2)
        inside = (x - cx) ** 2 + (y - cy) ** 2 < r * r
        img[inside] = 0.5 * img[inside] + rng.uniform(0, 128, 3)
    img += rng.normal(0, 6, (height, width, 1)) + rng.normal(0, 3, (height, width, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def make_folder(root: Path, count: int, size: tuple[int, int], seed: int) -> Path:
    """ROOT/train/<class>/*.jpg of `count` photos of size (W, H) in 10 classes, quality 90."""
    rng = np.random.default_rng(seed)
    for i in range(count):
        folder = root / "train" / f"class{i % 10}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(photo(rng, *size)).save(folder / f"{i:04d}.jpg", quality=90)
    return root


def items_of(root: Path) -> list:
    """The (path, label) items of ROOT/train, as the trainers scan them."""
    classes = imagefolder.list_classes(root / "train")
    return imagefolder.labelled(classes, sorted(classes))


def ours(root: Path, entries: list, train: bool):
    """A pass over the folder through ImageFolderDataset + build_pipeline."""
    dataset = imagefolder.ImageFolderDataset(items_of(root))
    pipeline = augment.build_pipeline(entries, (224, 224), train)

    def run() -> None:
        for i in range(len(dataset)):
            image, _ = dataset[i]
            pipeline(image, augment.sample_rng(0, 0, i))

    return run


def tv_geometry(entries: list, train: bool) -> list:
    """The v2 geometric transforms of an augment list (train) or of its eval pass."""
    crop = entries[0]
    if crop["name"] == "random_resized_crop":
        return [v2.RandomResizedCrop(224, crop["scale"], crop["ratio"], antialias=True)]
    steps = [v2.Resize(crop["from"], antialias=True)]
    if crop["name"] == "random_crop" and train:
        steps.append(v2.RandomCrop(224))
    else:
        steps.append(v2.CenterCrop(224))
    return steps + ([v2.RandomHorizontalFlip()] if train else [])


def tv_folder(root: Path, entries: list, train: bool):
    """A pass over torchvision's ImageFolder, v2 on the PIL image, then to float."""
    transform = v2.Compose(
        tv_geometry(entries, train)
        + [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD)]
    )
    dataset = datasets.ImageFolder(str(root / "train"), transform=transform)

    def run() -> None:
        for i in range(len(dataset)):
            dataset[i]

    return run


def tv_decode(root: Path, entries: list, train: bool):
    """A pass of torchvision.io.decode_jpeg + v2 on uint8 tensors."""
    transform = v2.Compose(
        tv_geometry(entries, train)
        + [v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD)]
    )
    paths = [p for p, _ in datasets.ImageFolder(str(root / "train")).samples]

    def run() -> None:
        for path in paths:
            transform(io.decode_jpeg(io.read_file(path), mode=io.ImageReadMode.RGB))

    return run


def race(contenders: dict, rounds: int, count: int) -> dict:
    """{name: [images/s per round]}, the contenders alternating (order rotated each round)."""
    rates = {name: [] for name in contenders}
    names = list(contenders)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            start = time.perf_counter()
            contenders[name]()
            rates[name].append(count / (time.perf_counter() - start))
    return rates


def report(title: str, rates: dict) -> None:
    """images/s per contender and ours / peer."""
    line = ", ".join(f"{n} {statistics.median(r):.0f}" for n, r in rates.items())
    ratios = ", ".join(
        f"ours/{n} {statistics.median(o / p for o, p in zip(rates['ours'], r, strict=True)):.2f}"
        for n, r in rates.items()
        if n != "ours"
    )
    print(f"  {title}: images/s {line}; {ratios}", flush=True)


def draft_difference(root: Path) -> str:
    """max / mean |reduced-size decode - full decode| of the resize_shorter(256) outputs."""
    worst, means = 0, []
    for path, _ in items_of(root):
        fast = augment.resize_shorter(imagefolder.ImageFile(path), 256)
        full = augment.resize_shorter(imagefolder.load_image(path), 256)
        diff = np.abs(fast.astype(np.int16) - full)
        worst, means = max(worst, int(diff.max())), [*means, float(diff.mean())]
    return f"max {worst}, mean {statistics.mean(means):.2f} (uint8 levels)"


def load() -> str:
    """The machine's load averages: other processes competing for the cores."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    """Make the folders, race the contenders, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--photos", type=int, default=300)
    parser.add_argument("--large", type=int, default=40)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"load average (1, 5, 15 min) at the start: {load()}")
    with tempfile.TemporaryDirectory() as tmp:
        folders = {
            f"{args.photos} photos 500 x 375": (
                make_folder(Path(tmp, "photos"), args.photos, (500, 375), 0),
                args.photos,
            ),
            f"{args.large} large photos 2048 x 1536": (
                make_folder(Path(tmp, "large"), args.large, (2048, 1536), 1),
                args.large,
            ),
        }
        for label, (root, count) in folders.items():
            print(f"{label}, JPEG quality 90, one core, {args.rounds} rounds:")
            for title, entries in TRANSFORMS.items():
                train = title.startswith("train")
                contenders = {
                    make.__name__.replace("_", "-"): make(root, entries, train)
                    for make in (ours, tv_folder, tv_decode)
                }
                report(title, race(contenders, args.rounds, count))
        large = folders[f"{args.large} large photos 2048 x 1536"][0]
        print(f"reduced-size decode vs full decode, large photos: {draft_difference(large)}")
    print(f"load average (1, 5, 15 min) at the end: {load()}")


if __name__ == "__main__":
    main()
