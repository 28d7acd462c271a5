"""The embedded synthetic images: the new render against the old one, and a validation pass.

`python bench/synthetic_render.py [--images N] [--processes P] [--skip-pass]`

1. CPU ms per image of backends/common/synthetic.py's render() and of the render it replaced
   (copied below as the peer, unchanged), alternating in rounds, at 227 x 227 (AlexNet) and
   32 x 32; prints old / new.
2. The dataset iteration of a full validation pass over the default synthetic set of a
   1000-class 227 x 227 spec (specs/alexnet.arch: 20 images per class, 20,000 images) with
   P processes (default 2, as a DataLoader's workers would): wall time and the busiest
   process's CPU time; the old render's pass is extrapolated from a 1/20 sample run the
   same way.
3. In one warmed-up process, the new render alone and followed by AlexNet's evaluation
   transform (resize to 256, centre crop, normalize: backends/common/augment.py).

Imports neither torch nor TensorFlow: this is the dataset alone.
"""

from __future__ import annotations

import argparse
import sys
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "backends" / "common"))

import augment  # noqa: E402
import synthetic  # noqa: E402
from synthetic import COLOURS, DARK, SHAPES, TEXTURES, class_attributes  # noqa: E402

ALEXNET = {"num_classes": 1000, "size": (227, 227), "split": "val", "per_class": 20}
# specs/alexnet.arch's augment entries that its evaluation applies: resize, crop, normalize
ALEXNET_AUGMENT = [
    {"name": "random_crop", "size": 227, "from": 256},
    {"name": "normalize", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
]


def old_shape_mask(shape, u, v):
    """The old render's shape mask (float64, every norm computed)."""
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


def old_texture_gain(texture, u, v, phase, rng):
    """The old render's texture gain (float64)."""
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


def old_render(label, size, rng):
    """The render this session replaced: float64 everywhere, Gaussian noise per pixel."""
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
    mask = old_shape_mask(SHAPES[shape], u, v)[..., None]
    phase = rng.uniform(0, 2 * np.pi)
    gain = old_texture_gain(TEXTURES[texture], u, v, phase, rng)[..., None]
    fg = np.clip(COLOURS[colour] * rng.uniform(0.85, 1.05, 3), 0.0, 1.0) * gain
    bg = rng.uniform(0.15, 0.45) + rng.uniform(-0.05, 0.05, 3)
    bg = bg + rng.normal(0.0, rng.uniform(0.02, 0.08), (h, w, 3))
    img = np.where(mask, fg, bg)
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def seconds_to_render(render, size, count):
    """CPU seconds to render `count` images of the first 1000 classes at `size` (CPU time:
    other processes on a loaded machine do not count)."""
    start = time.process_time()
    for i in range(count):
        render(i % 1000, size, np.random.default_rng([0, 1, i]))
    return time.process_time() - start


def per_image(size, count, rounds=3):
    """Print ms per image of the old and the new render, alternating; return old / new."""
    old = new = 0.0
    for _ in range(rounds):
        old += seconds_to_render(old_render, size, count)
        new += seconds_to_render(synthetic.render, size, count)
    images = rounds * count
    print(
        f"{size[0]} x {size[1]}: old {old / images * 1e3:.3f} ms/image, "
        f"new {new / images * 1e3:.3f} ms/image, old / new {old / new:.1f}"
    )
    return old / new


def with_eval_transform(count):
    """Print CPU ms per image of the new render alone and followed by AlexNet's evaluation
    transform (augment.py), in one process after a warm-up: what a DataLoader worker does."""
    transform = augment.build_pipeline(ALEXNET_AUGMENT, (227, 227), train=False)
    data = synthetic.SyntheticImages(**ALEXNET)
    for i in range(count):
        transform(data[i][0])
    start = time.process_time()
    for i in range(count):
        data[i]
    middle = time.process_time()
    for i in range(count):
        transform(data[i][0])
    end = time.process_time()
    print(
        f"in a warmed-up process: render {(middle - start) / count * 1e3:.3f} ms/image, "
        f"render + AlexNet's eval transform {(end - middle) / count * 1e3:.3f} ms/image"
    )


def iterate_share(job):
    """Render every `step`-th item of the AlexNet val set from `start` (one process's share);
    return the CPU seconds it took."""
    start, step, stop, use_old = job
    data = synthetic.SyntheticImages(**ALEXNET)
    cpu = time.process_time()
    for i in range(start, stop, step):
        if use_old:
            rng = np.random.default_rng([data.seed, synthetic.SPLITS[data.split], i])
            old_render(i % data.num_classes, data.size, rng)
        else:
            data[i]
    return time.process_time() - cpu


def pass_seconds(processes, stop, use_old):
    """(wall seconds, the busiest process's CPU seconds) for `processes` processes to render
    items 0..stop-1 between them (on idle cores the two agree)."""
    with Pool(processes) as pool:
        pool.map(iterate_share, [(0, processes, processes, False)] * processes)  # warm up
        start = time.perf_counter()
        cpu = pool.map(iterate_share, [(p, processes, stop, use_old) for p in range(processes)])
        return time.perf_counter() - start, max(cpu)


def validation_pass(processes):
    """Print the new render's full AlexNet validation pass and the old one's, extrapolated."""
    total = len(synthetic.SyntheticImages(**ALEXNET))
    new_wall, new_cpu = pass_seconds(processes, total, use_old=False)
    sample = total // 20
    old_wall, old_cpu = (t * total / sample for t in pass_seconds(processes, sample, True))
    print(
        f"validation pass of specs/alexnet.arch's default synthetic set ({total:,} images "
        f"of 227 x 227), {processes} processes: new {new_wall:.1f} s wall, "
        f"{new_cpu:.1f} s CPU per process; old {old_wall:.1f} s wall, {old_cpu:.1f} s CPU per "
        f"process (extrapolated from {sample:,} images); old / new {old_wall / new_wall:.1f} "
        f"(wall), {old_cpu / new_cpu:.1f} (CPU)"
    )


def main() -> None:
    """Run the per-image comparison, then the validation pass."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, default=100, help="images per size and round")
    p.add_argument("--processes", type=int, default=2, help="processes of the validation pass")
    p.add_argument("--skip-pass", action="store_true", help="only the per-image comparison")
    args = p.parse_args()
    per_image((227, 227), args.images)
    per_image((32, 32), args.images * 10)
    with_eval_transform(args.images * 2)
    if not args.skip_pass:
        validation_pass(args.processes)
    loadavg = Path("/proc/loadavg")
    if loadavg.exists():
        print(f"load average: {loadavg.read_text().strip()}")


if __name__ == "__main__":
    main()
