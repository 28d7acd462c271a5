"""The Keras trainer's tf.data feed (feed.py) against the common NumPy pipeline called directly:
every batch is np.stack of `build_pipeline(...)(image, sample_rng(seed, epoch, index))` over
the epoch's items, the call the PyTorch trainer makes for the same (seed, epoch, index)."""

import csv
import threading
import time

import numpy as np
import pytest

pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

SEED, EPOCH, HW = 5, 2, (16, 16)
AUGMENT = [
    {"name": "random_crop", "size": 16, "from": 18},
    {"name": "hflip"},
    {"name": "normalize", "mean": [0.4, 0.5, 0.6], "std": [0.2, 0.25, 0.3]},
]
MIXES = [{"name": "mixup", "alpha": 0.4}, {"name": "cutmix", "alpha": 1.0}]


@pytest.fixture(scope="module")
def rt(load):
    """The runtime's feed and augment modules."""
    return load("feed"), load("augment")


def images(count=21):
    """(uint8 image, label) items of varied sizes, as an ImageFolder gives them."""
    rng = np.random.default_rng(0)
    return [
        (rng.integers(0, 256, (20 + i % 3, 23 + i % 5, 3), dtype=np.uint8), i % 4)
        for i in range(count)
    ]


def reference(aug, pipeline, data, epoch, indices):
    """(np.stack of the pipeline's outputs, labels) of the items, called one by one."""
    rng = aug.sample_rng
    x = np.stack([pipeline(data[i][0], rng(SEED, epoch, int(i))) for i in indices])
    return x, np.array([data[i][1] for i in indices])


def feed_batches(feed, data, pipeline, shape, order, size, first=0, mix=None, workers=3):
    """The feed's batches as NumPy arrays."""
    spec = tf.TensorSpec(shape, tf.float32)
    dataset = feed.Feed(data, pipeline, SEED, workers, spec).dataset(EPOCH, order, size, first, mix)
    return [(x.numpy(), y.numpy()) for x, y in dataset]


def test_train_batches_equal_the_pipeline_from_a_mid_epoch_position(rt):
    feed, aug = rt
    data, pipeline = images(), aug.build_pipeline(AUGMENT, HW, train=True)
    order = np.random.default_rng([SEED, 2, EPOCH]).permutation(len(data))[:20]
    batches = feed_batches(feed, data, pipeline, (*HW, 3), order, 4, first=2)
    assert len(batches) == 3  # batches 2, 3 and 4 of 5
    for k, (x, y) in enumerate(batches, start=2):
        want_x, want_y = reference(aug, pipeline, data, EPOCH, order[4 * k : 4 * k + 4])
        assert x.dtype == np.float32 and y.dtype == np.int32
        np.testing.assert_array_equal(x, want_x)
        np.testing.assert_array_equal(y, want_y)
    flips = {reference(aug, pipeline, data, e, [3])[0].tobytes() for e in range(6)}
    assert len(flips) > 1  # the epoch changes the draw: the comparison can fail


def test_ten_crop_evaluation_keeps_the_last_partial_batch(rt):
    feed, aug = rt
    data = images(7)
    pipeline = aug.build_pipeline(AUGMENT, HW, train=False, tencrop=True)
    batches = feed_batches(feed, data, pipeline, (10, *HW, 3), np.arange(7), 3, workers=1)
    assert [x.shape for x, _ in batches] == [(3, 10, 16, 16, 3)] * 2 + [(1, 10, 16, 16, 3)]
    for k, (x, y) in enumerate(batches):
        want_x, want_y = reference(aug, pipeline, data, EPOCH, np.arange(7)[3 * k : 3 * k + 3])
        np.testing.assert_array_equal(x, want_x)
        np.testing.assert_array_equal(y, want_y)


def test_mixed_batches_equal_mix_batch_with_the_batch_generator(rt):
    feed, aug = rt
    data, pipeline = images(16), aug.build_pipeline(AUGMENT, HW, train=True)
    order = np.arange(16)[::-1]
    mix = (4, MIXES)
    batches = feed_batches(feed, data, pipeline, (*HW, 3), order, 4, first=1, mix=mix)
    assert len(batches) == 3
    for k, (x, y) in enumerate(batches, start=1):
        want_x, labels = reference(aug, pipeline, data, EPOCH, order[4 * k : 4 * k + 4])
        rng = aug.batch_rng(SEED, EPOCH, k)
        want_x, want_y = aug.mix_batch(want_x, labels, 4, MIXES, rng)
        assert y.shape == (4, 4) and not np.array_equal(y, np.eye(4)[labels])
        np.testing.assert_array_equal(x, want_x)
        np.testing.assert_array_equal(y, want_y)


def test_a_batch_is_made_on_one_thread_and_the_last_ones_share_the_threads(rt):
    """Each batch's items are made one after the other on one thread (as a DataLoader worker
    makes a batch: no GIL hand-over per item); the epoch's last batches, fewer than the
    workers, spread their items over the Feed's threads; every batch equals the pipeline's."""
    feed, aug = rt
    threads, items = {}, images(20)

    class Slow:  # items that take long enough for every idle thread to take one
        def __len__(self):
            return len(items)

        def __getitem__(self, i):
            time.sleep(0.02)
            threads[i] = threading.get_ident()
            return items[i]

    pipeline = aug.build_pipeline(AUGMENT, HW, train=True)
    order = np.random.default_rng(3).permutation(20)
    batches = feed_batches(feed, Slow(), pipeline, (*HW, 3), order, 4, workers=2)
    assert len(batches) == 5  # two rounds of two batches, then one alone
    for k, (x, y) in enumerate(batches):
        want_x, want_y = reference(aug, pipeline, items, EPOCH, order[4 * k : 4 * k + 4])
        np.testing.assert_array_equal(x, want_x)
        np.testing.assert_array_equal(y, want_y)
    used = [{threads[i] for i in order[4 * k : 4 * k + 4]} for k in range(5)]
    assert [len(u) for u in used[:4]] == [1, 1, 1, 1]
    assert len(used[4]) == 2


def test_token_ids_pass_through_as_int32(rt):
    feed, _ = rt
    ids = np.random.default_rng(1).integers(0, 50, (9, 6))
    data = [(ids[i], i % 2) for i in range(9)]
    spec = tf.TensorSpec((6,), tf.int32)
    token_ids = lambda a, rng: a.astype("int32")  # noqa: E731  train.py's token_ids
    dataset = feed.Feed(data, token_ids, SEED, 2, spec).dataset(0, np.arange(9), 4)
    x = np.concatenate([x.numpy() for x, _ in dataset])
    assert x.dtype == np.int32
    np.testing.assert_array_equal(x, ids)


def test_a_data_error_in_a_worker_is_raised_as_itself(rt):
    feed, _ = rt
    error = feed.DataError("b.jpg: cannot read image (broken); remove or replace the file")

    class Broken:
        def __len__(self):
            return 12

        def __getitem__(self, i):
            if i == 9:
                raise error
            return np.zeros((4, 4, 3), np.float32), 0

    spec = tf.TensorSpec((4, 4, 3), tf.float32)
    loader = feed.Feed(Broken(), lambda a, rng: a, SEED, 2, spec)
    with pytest.raises(feed.DataError) as raised:
        list(loader.checked(loader.dataset(0, np.arange(12), 4)))
    assert raised.value is error


def test_replica_parts_cut_as_numpy_array_split(rt):
    feed, _ = rt
    x, y = np.arange(7 * 2).reshape(7, 2), np.arange(7)
    for count in (1, 2, 3, 7):
        batches = tf.data.Dataset.from_tensors((x, y)).flat_map(feed.replica_parts(count))
        parts = [(a.numpy(), b.numpy()) for a, b in batches]
        want = zip(np.array_split(x, count), np.array_split(y, count), strict=True)
        for (a, b), (want_a, want_b) in zip(parts, want, strict=True):
            np.testing.assert_array_equal(a, want_a)
            np.testing.assert_array_equal(b, want_b)


def write_jpegs(root, per_class=6, size=40):
    """A tiny ImageFolder of JPEGs: four classes of noisy colour fields, train/ and val/."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, count in (("train", per_class), ("val", 3)):
        for c in range(4):
            folder = root / split / f"class{c}"
            folder.mkdir(parents=True)
            for i in range(count):
                base = np.array([60 + 50 * c, 200 - 40 * c, 90 + 30 * (c % 2)], float)
                noise = rng.normal(0, 20, (size, size + i, 3))
                pixels = np.clip(base + noise, 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.jpg", quality=90)


@pytest.mark.slow  # two trainer runs (TensorFlow start-up each)
def test_a_jpeg_folder_trains_to_the_same_metrics_with_any_worker_count(run_train, tmp_path):
    """Ten-crop validation over 2 replicas, 3 threads against 1: the same numbers."""
    write_jpegs(tmp_path / "data")
    flags = ["--data", tmp_path / "data", "--epochs", "2", "--batch-size", "8", "--ten-crop"]
    flags += ["--devices", "2", "--seed", "4"]
    columns = ("epoch", "step", "train_loss", "val_loss", "val_error", "lr")
    rows = []
    for workers in (3, 0):
        out = tmp_path / f"run{workers}"
        proc = run_train(*flags, "--workers", workers, "--out", out)
        assert proc.returncode == 0, proc.stderr
        assert "24 train / 12 val images" in proc.stdout
        with open(out / "metrics.csv", newline="") as f:
            rows.append([[row[k] for k in columns] for row in csv.DictReader(f)])
    assert [row[:2] for row in rows[0]] == [["1", "3"], ["2", "6"]]
    assert rows[0] == rows[1]


def test_every_level_of_every_channel_normalizes_as_a_per_pixel_broadcast(rt):
    """normalize() works a row of pixels at a time: every uint8 level of each channel (one
    image holds them all) gives the float32 of the plain per-pixel broadcast."""
    feed, aug = rt
    levels = np.arange(256, dtype=np.uint8)
    image = np.stack([np.roll(levels, 7 * c) for c in range(3)], -1).reshape(16, 16, 3)
    data = [(image, 0), (image[::-1], 1)]
    augment = [AUGMENT[2]]  # normalize alone: every level reaches it
    pipeline = aug.build_pipeline(augment, HW, train=True)
    ((x, _),) = feed_batches(feed, data, pipeline, (*HW, 3), np.arange(2), 2)
    np.testing.assert_array_equal(x, reference(aug, pipeline, data, EPOCH, [0, 1])[0])
    mean, std = (np.float32(AUGMENT[2][key]) for key in ("mean", "std"))
    np.testing.assert_array_equal(x[0], (image.astype(np.float32) / 255.0 - mean) / std)
