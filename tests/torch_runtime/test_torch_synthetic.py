"""The embedded synthetic dataset: deterministic, fast, and its classes tell apart."""

import hashlib
import inspect
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from statistics import NormalDist

import numpy as np
import pytest

pytest.importorskip("torch")


@pytest.fixture
def synthetic(load):
    """The synthetic module."""
    return load("synthetic")


def test_items_are_pure_functions_of_seed_split_and_index(synthetic):
    a = synthetic.SyntheticImages(10, (32, 32), "train", per_class=5, seed=7)
    b = synthetic.SyntheticImages(10, (32, 32), "train", per_class=5, seed=7)
    img, label = a[13]
    assert img.dtype == np.uint8 and img.shape == (32, 32, 3) and label == 3
    assert np.array_equal(img, b[13][0])
    assert np.array_equal(a[13][0], a[13][0])
    other_seed = synthetic.SyntheticImages(10, (32, 32), "train", per_class=5, seed=8)
    val = synthetic.SyntheticImages(10, (32, 32), "val", per_class=5, seed=7)
    assert not np.array_equal(img, other_seed[13][0])
    assert not np.array_equal(img, val[13][0])
    assert not np.array_equal(img, a[23][0])  # same class, different pose


def test_length_labels_and_bounds(synthetic):
    ds = synthetic.SyntheticImages(7, (20, 24), "val", per_class=3)
    assert len(ds) == 21
    assert [ds[i][1] for i in range(len(ds))] == list(range(7)) * 3
    assert ds[0][0].shape == (20, 24, 3)
    with pytest.raises(IndexError):
        ds[21]
    with pytest.raises(ValueError, match="1..1000"):
        synthetic.SyntheticImages(1001)
    with pytest.raises(ValueError, match="split"):
        synthetic.SyntheticImages(10, split="test")


def test_thousand_classes_have_distinct_attributes(synthetic):
    attrs = {synthetic.class_attributes(c) for c in range(1000)}
    assert len(attrs) == 1000
    # the first ten classes differ in shape, colour and texture at once
    first = [synthetic.class_attributes(c) for c in range(10)]
    assert all(len({a[k] for a in first}) == 10 for k in range(3))


def test_shapes_and_textures_differ_pixelwise(synthetic):
    v, u = np.mgrid[-1.2:1.2:64j, -1.2:1.2:64j]
    masks = [synthetic.shape_mask(s, u, v) for s in synthetic.SHAPES]
    gains = [
        synthetic.texture_gain(t, u, v, 0.3, np.random.default_rng(0)) for t in synthetic.TEXTURES
    ]
    for i in range(10):
        for j in range(i):
            assert np.mean(masks[i] != masks[j]) > 0.05, (synthetic.SHAPES[i], synthetic.SHAPES[j])
            assert np.mean(np.abs(gains[i] - gains[j]) > 0.1) > 0.05
    assert min(np.mean(m) for m in masks) > 0.1


def test_nearest_class_mean_separates_ten_classes(synthetic):
    def features(split, per_class):
        ds = synthetic.SyntheticImages(10, (32, 32), split, per_class=per_class)
        imgs = np.stack([ds[i][0] for i in range(len(ds))]).astype(np.float32) / 255
        pooled = imgs.reshape(len(ds), 4, 8, 4, 8, 3).mean(axis=(2, 4)).reshape(len(ds), -1)
        colour_hist = np.stack(
            [np.histogramdd(im.reshape(-1, 3), bins=4)[0].ravel() for im in imgs]
        )
        return np.hstack([pooled, colour_hist / 64]), np.arange(len(ds)) % 10

    x, y = features("train", 30)
    centroids = np.stack([x[y == c].mean(axis=0) for c in range(10)])
    xv, yv = features("val", 10)
    pred = np.argmin(((xv[:, None] - centroids[None]) ** 2).sum(-1), axis=1)
    assert np.mean(pred == yv) > 0.6  # chance: 0.1


def test_generation_is_fast(synthetic):
    ds = synthetic.SyntheticImages(1000, (32, 32), per_class=1)
    start = time.perf_counter()
    for i in range(1000):
        ds[i]
    assert time.perf_counter() - start < 3.0


def test_alexnet_sized_images_render_in_about_a_millisecond(synthetic):
    """227 x 227 (specs/alexnet.arch): the float64 render took 5.5 ms of CPU per image; this
    one about 0.5 (bench/synthetic_render.py). CPU time, so that other processes' load on
    the machine does not count."""
    ds = synthetic.SyntheticImages(1000, (227, 227), "val", per_class=1)
    ds[0]
    start = time.process_time()
    for i in range(100):
        ds[i]
    assert time.process_time() - start < 0.3


ITEMS = [(i, size) for i in (0, 7, 1234, 1999) for size in ((227, 227), (31, 45))]


def digests(synthetic):
    """sha256 of the bytes of the ITEMS (index, size) of seed 3's val set."""
    return [
        hashlib.sha256(synthetic.SyntheticImages(1000, size, "val", 2, seed=3)[i][0]).hexdigest()
        for i, size in ITEMS
    ]


def test_items_are_the_same_bytes_in_another_process(synthetic, outdir):
    """DataLoader workers, DDP ranks and the Keras trainer render in their own processes."""
    code = "\n".join(
        [
            f"import hashlib, sys; sys.path.insert(0, {str(outdir)!r}); import synthetic",
            f"ITEMS = {ITEMS!r}",
            inspect.getsource(digests),
            "print(' '.join(digests(synthetic)))",
        ]
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    here = digests(synthetic)
    assert done.stdout.split() == here and len(set(here)) == len(ITEMS)


def test_threads_render_the_same_bytes(synthetic):
    """The Keras trainer renders in a thread pool: no shared state between renders."""
    ds = synthetic.SyntheticImages(1000, (67, 67), "train", per_class=1)
    alone = [ds[i][0] for i in range(64)]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda i: ds[i][0], range(64)))
    assert all(np.array_equal(a, b) for a, b in zip(alone, together, strict=True))


def test_stripes_are_the_even_bands(synthetic):
    """The stripes mask uses sin() > 0 for floor((u + 1) * 2.5) % 2 == 0 (the old formula)."""
    v, u = np.mgrid[-1.2:1.2:301j, -1.2:1.2:301j]
    box = np.maximum(np.abs(u), np.abs(v))
    old = (box <= 0.95) & (np.floor((u + 1.0) * 2.5) % 2 == 0)
    new = synthetic.shape_mask("stripes", u.astype(np.float32), v.astype(np.float32))
    on_edge = np.abs((u + 1.0) * 2.5 - np.round((u + 1.0) * 2.5)) < 1e-5
    assert np.array_equal(new[~on_edge], old[~on_edge])


def test_foreground_is_colour_times_gain(synthetic):
    rng = np.random.default_rng(1)
    gain = rng.uniform(synthetic.DARK, 1.0, (13, 17)).astype(np.float32)
    colour = rng.uniform(0, 1, 3)
    expected = np.round(gain[..., None] * colour * 255.0).reshape(13, 17 * 3)
    got = synthetic.foreground(colour, gain.copy())
    assert got.dtype == np.uint8
    assert np.max(np.abs(got - expected)) <= 1  # uint16 fixed point: at most one level off


def test_overlay_is_a_masked_choice(synthetic):
    rng = np.random.default_rng(2)
    mask = rng.random((9, 11)) > 0.5
    top, bottom = rng.integers(0, 256, (2, 9, 33), dtype=np.uint8)
    expected = np.where(np.repeat(mask, 3, axis=1), top, bottom)
    assert np.array_equal(synthetic.overlay(mask, top.copy(), bottom), expected)


def test_background_noise_is_gaussian_around_its_level(synthetic):
    """The noise is a byte looked up in the normal quantiles: its mean and spread per channel
    are those drawn, its histogram the normal's."""
    h, w = 200, 300
    rng = np.random.default_rng(5)
    img = synthetic.background(h, w, rng).reshape(h, w, 3) / 255.0
    rng = np.random.default_rng(5)
    level = rng.uniform(0.15, 0.45) + rng.uniform(-0.05, 0.05, 3)
    sd = rng.uniform(0.02, 0.08)
    assert np.allclose(img.reshape(-1, 3).mean(axis=0), level, atol=0.003)
    assert np.allclose(img.reshape(-1, 3).std(axis=0), sd, rtol=0.08)
    z = (img - level) / sd
    for q in (0.1, 0.5, 0.9):
        assert abs(np.mean(z <= NormalDist().inv_cdf(q)) - q) < 0.02
