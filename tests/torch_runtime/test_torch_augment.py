"""Augmentation: PCA lighting, crops, flips, normalisation and the pipelines, by hand."""

import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")

NORM = {"name": "normalize", "mean": [0.5, 0.25, 0.0], "std": [0.5, 0.25, 1.0]}


@pytest.fixture
def aug(load):
    """The augment module."""
    return load("augment")


def image(h, w):
    """A uint8 HxWx3 image whose pixels are all different (mod 256)."""
    return (np.arange(h * w * 3).reshape(h, w, 3) % 256).astype(np.uint8)


def test_pca_lighting_adds_the_published_eigen_combination(aug):
    img = np.full((2, 3, 3), 0.5, np.float32)
    out = aug.pca_lighting(img, np.array([1.0, 0.0, 0.0]))
    # 0.2175 * first eigenvector (-0.5675, -0.5808, -0.5836)
    assert np.allclose(out - img, [-0.12343125, -0.126324, -0.126933], atol=1e-7)
    out = aug.pca_lighting(img, np.array([0.5, -2.0, 4.0]))
    red = -0.5675 * 0.5 * 0.2175 + 0.7192 * -2 * 0.0188 + 0.4009 * 4 * 0.0045
    green = -0.5808 * 0.5 * 0.2175 + -0.0045 * -2 * 0.0188 + -0.8140 * 4 * 0.0045
    blue = -0.5836 * 0.5 * 0.2175 + -0.6948 * -2 * 0.0188 + 0.4203 * 4 * 0.0045
    assert np.allclose(out - img, [red, green, blue], atol=1e-7)
    assert np.allclose([red, green, blue], [-0.08154135, -0.0776448, -0.02977662])


def test_pca_lighting_works_on_unit_scaled_uint8(aug):
    img = np.full((1, 1, 3), 255, np.uint8)
    assert np.allclose(aug.pca_lighting(img, np.zeros(3)), 1.0)


def test_eval_pipeline_centre_crops_and_normalizes(aug):
    img = image(4, 6)
    crop = {"name": "random_crop", "size": 4, "from": 4}
    pipe = aug.build_pipeline([crop, {"name": "hflip"}, NORM], (4, 4), train=False)
    out = pipe(img)
    expected = (img[:, 1:5].astype(np.float32) / 255 - [0.5, 0.25, 0.0]) / [0.5, 0.25, 1.0]
    assert out.dtype == np.float32 and out.shape == (4, 4, 3)
    assert np.allclose(out, expected, atol=1e-6)


def test_eval_pipeline_without_crop_resizes_to_the_input(aug):
    img = np.full((10, 30, 3), 200, np.uint8)
    out = aug.build_pipeline([], (8, 6), train=False)(img)
    assert out.shape == (8, 6, 3) and np.allclose(out, 200 / 255)


def test_train_pipeline_matches_the_steps_done_by_hand(aug):
    img = image(6, 9)
    entries = [
        {"name": "random_crop", "size": 4, "from": 6},
        {"name": "hflip"},
        {"name": "pca_lighting", "std": 0.1},
        NORM,
    ]
    pipe = aug.build_pipeline(entries, (4, 4), train=True)
    for seed in range(6):
        rng = np.random.default_rng(seed)
        top, left = rng.integers(0, 3), rng.integers(0, 6)
        x = img[top : top + 4, left : left + 4]
        x = x[:, ::-1] if rng.random() < 0.5 else x
        alpha = rng.normal(0.0, 0.1, 3)
        x = x / 255.0 + aug.EIGVEC @ (alpha * aug.EIGVAL)
        x = (x - [0.5, 0.25, 0.0]) / [0.5, 0.25, 1.0]
        assert np.allclose(pipe(img, np.random.default_rng(seed)), x, atol=1e-5)


def test_random_crop_and_flip_vary_over_samples(aug):
    img = image(4, 6)
    pipe = aug.build_pipeline([{"name": "random_crop", "size": 4}, {"name": "hflip"}], (4, 4), True)
    windows = {k: img[:, k : k + 4] / 255 for k in range(3)}
    seen = set()
    for seed in range(100):
        out = pipe(img, aug.sample_rng(0, 0, seed))
        matches = [
            (k, flip)
            for k, w in windows.items()
            for flip in (0, 1)
            if np.allclose(out, w[:, ::-1] if flip else w)
        ]
        assert len(matches) == 1
        seen.add(matches[0])
    assert seen == {(k, f) for k in range(3) for f in (0, 1)}


def test_sample_rng_is_a_function_of_seed_epoch_index(aug):
    draw = lambda *key: aug.sample_rng(*key).random(4)  # noqa: E731
    assert np.array_equal(draw(1, 2, 3), draw(1, 2, 3))
    assert not np.array_equal(draw(1, 2, 3), draw(1, 3, 3))
    assert not np.array_equal(draw(1, 2, 3), draw(1, 2, 4))
    assert not np.array_equal(draw(1, 2, 3), draw(2, 2, 3))


def test_resize_shorter_keeps_aspect_and_values(aug):
    assert aug.resize_shorter(np.zeros((40, 60, 3), np.uint8), 32).shape == (32, 48, 3)
    assert aug.resize_shorter(np.zeros((60, 40, 3), np.uint8), 32).shape == (48, 32, 3)
    flat = np.full((5, 7, 3), 0.25, np.float32)
    out = aug.resize_shorter(flat, 10)
    assert out.shape == (10, 14, 3) and out.dtype == np.float32 and np.allclose(out, 0.25)
    ramp = np.tile(np.arange(0, 256, 32, dtype=np.uint8)[None, :, None], (8, 1, 3))
    up = aug.resize(ramp, (8, 16))
    assert np.all(np.diff(up[0, :, 0].astype(int)) >= 0)  # bilinear keeps a ramp monotone


def test_ten_crop_takes_corners_centre_and_mirrors(aug):
    img = image(5, 5)
    crops = aug.ten_crop(img, 3)
    assert crops.shape == (10, 3, 3, 3)
    expected = [img[0:3, 0:3], img[0:3, 2:5], img[2:5, 0:3], img[2:5, 2:5], img[1:4, 1:4]]
    for i, e in enumerate(expected):
        assert np.array_equal(crops[i], e)
        assert np.array_equal(crops[i + 5], e[:, ::-1])


def test_ten_crop_eval_pipeline(aug):
    img = image(5, 7)
    crop = {"name": "center_crop", "size": 3, "from": 5}
    out = aug.build_pipeline([crop, NORM], (3, 3), train=False, tencrop=True)(img)
    assert out.shape == (10, 3, 3, 3)
    centre = (img[1:4, 2:5] / 255 - [0.5, 0.25, 0.0]) / [0.5, 0.25, 1.0]
    assert np.allclose(out[4], centre, atol=1e-6)


def test_gray_input(aug):
    img = np.zeros((4, 4, 3), np.uint8)
    img[..., 1] = 100
    out = aug.build_pipeline([], (4, 4), train=False, channels=1)(img)
    assert out.shape == (4, 4, 1) and np.allclose(out, round(0.587 * 100) / 255)


def test_pipeline_pickles(aug):
    entries = [{"name": "center_crop", "size": 4, "from": 5}, {"name": "pca_lighting", "std": 0.1}]
    pipe = aug.build_pipeline(entries, (4, 4), train=True)
    img = image(5, 8)
    again = pickle.loads(pickle.dumps(pipe))
    rng = lambda: np.random.default_rng(1)  # noqa: E731
    assert np.array_equal(again(img, rng()), pipe(img, rng()))


@pytest.mark.parametrize(
    ("entries", "kwargs", "message"),
    [
        ([{"name": "random_crop", "size": 5}], {}, "does not give the input"),
        ([{"name": "random_crop", "size": 4, "from": 3}], {}, "smaller than size"),
        (
            [{"name": "random_crop", "size": 4}, {"name": "center_crop", "size": 4}],
            {},
            "at most one",
        ),
        ([{"name": "cutout"}], {}, "unknown augment"),
        ([{"name": "pca_lighting", "std": 0.1}], {"channels": 1}, "needs RGB"),
        ([{"name": "normalize", "mean": [0.5], "std": [0.5]}], {}, "3 mean and std"),
        ([], {"train": False, "tencrop": True}, "needs a random_crop"),
    ],
)
def test_bad_augment_lists_are_rejected(aug, entries, kwargs, message):
    with pytest.raises(ValueError, match=message):
        aug.build_pipeline(entries, (4, 4), **{"train": True, **kwargs})


@pytest.mark.parametrize("p, low, high", [(0.0, 0, 0), (1.0, 200, 200), (0.25, 30, 70)])
def test_hflip_probability_is_honoured(aug, p, low, high):
    img = image(4, 4)
    pipe = aug.build_pipeline([{"name": "hflip", "p": p}], (4, 4), train=True)
    plain = aug.to_float(img)
    flips = sum(
        not np.array_equal(pipe(img, np.random.default_rng(seed)), plain) for seed in range(200)
    )
    assert low <= flips <= high


class TorchDraws:
    """A stand-in for the NumPy generator that draws as torchvision's transforms draw (the
    global torch generator), so the same seed must give torchvision's box."""

    def uniform(self, low, high):
        """torch.empty(1).uniform_(low, high), as RandomResizedCrop draws."""
        return torch.empty(1).uniform_(low, high).item()

    def integers(self, low, high):
        """torch.randint(low, high, (1,)), as RandomResizedCrop draws."""
        return torch.randint(low, high, size=(1,)).item()

    def random(self):
        """torch.rand(1), as a random transform decides whether to apply itself."""
        return torch.rand(1).item()


@pytest.mark.parametrize(
    "hw, scale, ratio",
    [((40, 60), (0.08, 1.0), (3 / 4, 4 / 3)), ((50, 20), (0.5, 1.0), (0.5, 2.0))],
)
def test_random_resized_crop_samples_torchvisions_boxes(aug, hw, scale, ratio):
    v2 = pytest.importorskip("torchvision.transforms.v2")
    theirs = v2.RandomResizedCrop(8, scale=scale, ratio=ratio)
    frame = torch.zeros(3, *hw)
    for seed in range(200):
        torch.manual_seed(seed)
        want = theirs.make_params([frame])
        torch.manual_seed(seed)
        got = aug.resized_crop_box(*hw, scale, ratio, TorchDraws())
        assert got == (want["top"], want["left"], want["height"], want["width"]), seed


@pytest.mark.parametrize("hw, ratio", [((30, 30), (2.0, 3.0)), ((10, 40), (0.5, 1.5))])
def test_random_resized_crop_falls_back_to_torchvisions_central_crop(aug, hw, ratio):
    """No box of the whole area with these aspects fits: both take the same central one."""
    v2 = pytest.importorskip("torchvision.transforms.v2")
    want = v2.RandomResizedCrop(8, scale=(1.0, 1.0), ratio=ratio).make_params([torch.zeros(3, *hw)])
    got = aug.resized_crop_box(*hw, (1.0, 1.0), ratio, np.random.default_rng(0))
    assert got == (want["top"], want["left"], want["height"], want["width"])
    assert got[2:] != hw  # the fallback clamped the aspect


def test_random_resized_crop_pixels_are_torchvisions_resized_crop(aug):
    """The same box gives the same pixels as torchvision.transforms.v2.functional.resized_crop
    on a PIL image (bilinear; Pillow resizes in both)."""
    v2 = pytest.importorskip("torchvision.transforms.v2")
    from PIL import Image

    img = np.random.default_rng(3).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    for seed in range(5):
        box = aug.resized_crop_box(37, 53, (0.08, 1.0), (3 / 4, 4 / 3), aug.sample_rng(0, 0, seed))
        got = aug.random_resized_crop(
            img, 16, (0.08, 1.0), (3 / 4, 4 / 3), aug.sample_rng(0, 0, seed)
        )
        want = v2.functional.resized_crop(
            Image.fromarray(img), *box, [16, 16], v2.InterpolationMode.BILINEAR
        )
        np.testing.assert_array_equal(got, np.asarray(want))


def test_random_resized_crop_pipeline_trains_and_evaluates(aug):
    entry = {"name": "random_resized_crop", "size": 8, "scale": [0.2, 1.0], "ratio": [0.75, 4 / 3]}
    train = aug.build_pipeline([{**entry, "from": 10}], (8, 8), train=True)
    outs = {train(image(20, 30), aug.sample_rng(1, 0, i)).tobytes() for i in range(6)}
    assert len(outs) == 6  # a different box per sample
    evaluated = aug.build_pipeline([{**entry, "from": 10}], (8, 8), train=False)(image(20, 30))
    want = aug.center_crop(aug.resize_shorter(image(20, 30), 10), 8).astype(np.float32) / 255
    np.testing.assert_allclose(evaluated, want)


def batch_nchw(rng, n=4, h=6, w=10):
    """A float32 NHWC batch and labels, and the same images as an NCHW tensor."""
    x = rng.random((n, h, w, 3), dtype=np.float32)
    return x, rng.integers(0, 5, n), torch.from_numpy(x.transpose(0, 3, 1, 2).copy())


def test_mixup_is_torchvisions_for_the_same_lambda(aug):
    v2 = pytest.importorskip("torchvision.transforms.v2")
    x, y, images = batch_nchw(np.random.default_rng(0))
    theirs = v2.MixUp(alpha=0.2, num_classes=5)
    theirs.make_params = lambda flat: {"lam": 0.3}
    want_x, want_y = theirs(images, torch.from_numpy(y))
    got_x, got_y = aug.mixup(x, np.eye(5, dtype=np.float32)[y], 0.3)
    np.testing.assert_allclose(got_x.transpose(0, 3, 1, 2), want_x.numpy(), atol=1e-6)
    np.testing.assert_allclose(got_y, want_y.numpy(), atol=1e-6)


def test_cutmix_is_torchvisions_box_and_blend(aug):
    v2 = pytest.importorskip("torchvision.transforms.v2")
    x, y, images = batch_nchw(np.random.default_rng(1))
    theirs = v2.CutMix(alpha=1.0, num_classes=5)
    theirs._dist.sample = lambda shape: torch.tensor(0.35)
    for seed in range(20):
        torch.manual_seed(seed)
        params = theirs.make_params([images])
        torch.manual_seed(seed)
        y1, y2, x1, x2 = aug.cutmix_box(6, 10, 0.35, TorchDraws())
        assert params["box"] == (x1, y1, x2, y2), seed
    theirs.make_params = lambda flat: params
    want_x, want_y = theirs(images, torch.from_numpy(y))
    got_x, got_y = aug.cutmix(x, np.eye(5, dtype=np.float32)[y], (y1, y2, x1, x2))
    assert (y2 - y1) * (x2 - x1) > 0  # a box was pasted
    np.testing.assert_array_equal(got_x.transpose(0, 3, 1, 2), want_x.numpy())
    np.testing.assert_allclose(got_y, want_y.numpy(), atol=1e-6)


def test_mix_batch_draws_from_the_batch_generator(aug):
    """Without mix entries the batch is untouched; with both, each batch takes one of them,
    reproducibly from (seed, epoch, batch); the soft targets sum to 1."""
    x, y, _ = batch_nchw(np.random.default_rng(2))
    assert aug.mix_batch(x, y, 5, [], aug.batch_rng(0, 0, 0)) == (x, y)
    entries = [{"name": "mixup", "alpha": 0.2}, {"name": "cutmix", "alpha": 1.0}]
    runs = [aug.mix_batch(x, y, 5, entries, aug.batch_rng(0, 0, b)) for b in range(8)]
    again = aug.mix_batch(x, y, 5, entries, aug.batch_rng(0, 0, 3))
    np.testing.assert_array_equal(runs[3][0], again[0])
    for mixed, targets in runs:
        assert mixed.dtype == np.float32 and targets.shape == (4, 5)
        np.testing.assert_allclose(targets.sum(axis=1), 1.0, rtol=1e-6)
    pasted = [np.isin(m, x).all() for m, _ in runs]  # cutmix only copies pixels
    assert any(pasted) and not all(pasted)


@pytest.mark.parametrize("scale, ratio", [((0.02, 0.33), (0.3, 3.3)), ((0.3, 0.9), (0.5, 2.0))])
def test_random_erasing_is_torchvisions_for_the_same_draws(aug, scale, ratio):
    """The same decision, box and fill as v2.RandomErasing (p = 0.5, value 0.7) when our
    generator draws what torch's draws; some images erased, some kept, some boxes not found."""
    v2 = pytest.importorskip("torchvision.transforms.v2")
    img = np.random.default_rng(4).random((12, 20, 3), dtype=np.float32)
    theirs = v2.RandomErasing(p=0.5, scale=scale, ratio=ratio, value=0.7)
    erased = 0
    for seed in range(100):
        torch.manual_seed(seed)
        want = theirs(torch.from_numpy(img.transpose(2, 0, 1).copy())).numpy()
        torch.manual_seed(seed)
        got = aug.random_erasing(img, TorchDraws(), 0.5, scale, ratio, 0.7)
        np.testing.assert_array_equal(got.transpose(2, 0, 1), want, err_msg=str(seed))
        erased += not np.array_equal(got, img)
    assert 20 < erased < 80


def test_random_erasing_in_the_pipeline_fills_a_box(aug):
    entry = {"name": "random_erasing", "p": 1.0, "scale": [0.1, 0.2], "ratio": [0.5, 2.0]}
    pipe = aug.build_pipeline([{**entry, "value": -1.0}], (10, 10), train=True)
    out = pipe(image(10, 10), aug.sample_rng(0, 0, 1))
    rows, cols = np.nonzero((out == -1.0).all(axis=2))
    assert 6 <= len(rows) <= 30 and len(rows) == (np.ptp(rows) + 1) * (np.ptp(cols) + 1)
    assert (
        aug.build_pipeline([{**entry, "value": -1.0}], (10, 10), train=False)(image(10, 10)).min()
        >= 0
    )  # evaluation does not erase
