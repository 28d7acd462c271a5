"""The embedded synthetic dataset: deterministic, fast, and its classes tell apart."""

import time

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
