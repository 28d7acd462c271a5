"""The fast image pipeline (one RGB resize, table normalisation, reduced-size JPEG decodes)
against the reference it replaced (pipeline_reference.py): the same random draws, the same
pixels where it decodes fully, within a stated tolerance where it decodes a JPEG reduced."""

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("torch")

import pipeline_reference as reference  # noqa: E402

NORM3 = {"name": "normalize", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
NORM1 = {"name": "normalize", "mean": [0.45], "std": [0.226]}
RRC = {"name": "random_resized_crop", "size": 32, "scale": (0.08, 1.0), "ratio": (0.75, 4 / 3)}
SPECS = {  # name: (augment without normalize, train, tencrop)
    "random crop": (
        [{"name": "random_crop", "size": 32, "from": 36}, {"name": "hflip"}],
        True,
        False,
    ),
    "resized crop": ([RRC, {"name": "hflip"}], True, False),
    "centre crop": (
        [{"name": "center_crop", "size": 32, "from": 36}, {"name": "hflip"}],
        True,
        False,
    ),
    "no crop": ([{"name": "hflip", "p": 0.7}], True, False),
    "eval": ([{"name": "random_crop", "size": 32, "from": 36}], False, False),
    "ten-crop": ([{"name": "center_crop", "size": 32, "from": 40}], False, True),
    "eval no crop": ([], False, False),
}
# reduced-size decodes (large.jpg) differ from the full decode by at most this many uint8
# levels, and by this many on average (README, "The trainers"; measured: 6 and 0.2)
DRAFT_MAX, DRAFT_MEAN = 8, 0.5


@pytest.fixture(scope="module")
def aug(load):
    """The augment module."""
    return load("augment")


@pytest.fixture(scope="module")
def imagefolder(load):
    """The imagefolder module."""
    return load("imagefolder")


def photo(rng, height, width):
    """uint8 HxWx3: shading, hard-edged discs and grain, as photos have."""
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    img = 120 + 80 * np.sin(6 * x[..., None] + 4 * y[..., None] + rng.uniform(0, 6, 3))
    for _ in range(6):
        cx, cy, r = rng.uniform(0, 1, 3) * [1, 0.75, 0.2]
        img[(x - cx) ** 2 + (y - cy) ** 2 < r * r] *= rng.uniform(0.3, 1.2)
    img += rng.normal(0, 5, (height, width, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """{name: path}: RGB, grey and CMYK JPEGs, PNGs with alpha and a palette, a large JPEG."""
    rng, folder = np.random.default_rng(3), tmp_path_factory.mktemp("pipeline_files")
    images = {
        "rgb.jpg": Image.fromarray(photo(rng, 72, 96)),
        "gray.jpg": Image.fromarray(photo(rng, 96, 72)).convert("L"),
        "cmyk.jpg": Image.fromarray(photo(rng, 70, 70)).convert("CMYK"),
        "alpha.png": Image.fromarray(np.dstack([photo(rng, 64, 80), photo(rng, 64, 80)[..., :1]])),
        "palette.png": Image.fromarray(photo(rng, 80, 64)).quantize(64),
        "large.jpg": Image.fromarray(photo(rng, 480, 640)),
    }
    paths = {}
    for name, img in images.items():
        paths[name] = folder / name
        img.save(paths[name], quality=90)
    return paths


def run_both(aug, imagefolder, path, spec, channels, index):
    """(fast output, reference output) of one file, with the generators' next draws."""
    augment, train, tencrop = spec
    hw = (32, 32) if augment else (30, 34)
    augment = augment + [NORM1 if channels == 1 else NORM3] * (spec is not SPECS["eval no crop"])
    image, _ = imagefolder.ImageFolderDataset([(str(path), 0)])[0]
    fast_rng, ref_rng = aug.sample_rng(5, 1, index), aug.sample_rng(5, 1, index)
    pipe = aug.build_pipeline(augment, hw, train, channels, tencrop=tencrop)
    fast = pipe(image, fast_rng)
    ref = reference.pipeline(
        reference.load_image(path), augment, hw, train, ref_rng, channels, tencrop
    )
    assert fast_rng.random() == ref_rng.random()  # the same draws, in the same order
    return fast, ref


@pytest.mark.parametrize("channels", [3, 1])
@pytest.mark.parametrize("spec", list(SPECS))
def test_full_decodes_give_the_reference_pixels(aug, imagefolder, files, spec, channels):
    for name in ("rgb.jpg", "gray.jpg", "cmyk.jpg", "alpha.png", "palette.png"):
        for index in range(3):
            fast, ref = run_both(aug, imagefolder, files[name], SPECS[spec], channels, index)
            assert fast.dtype == np.float32 and fast.flags.c_contiguous
            assert fast.shape == ref.shape and np.array_equal(fast, ref), (name, index)


@pytest.mark.parametrize("spec", list(SPECS))
def test_arrays_give_the_reference_pixels(aug, spec):
    augment, train, tencrop = SPECS[spec]
    img = photo(np.random.default_rng(1), 50, 61)
    for index in range(3):
        fast_rng, ref_rng = aug.sample_rng(0, 2, index), aug.sample_rng(0, 2, index)
        entries = augment + [NORM3]
        fast = aug.build_pipeline(entries, (32, 32), train, tencrop=tencrop)(img, fast_rng)
        ref = reference.pipeline(img, entries, (32, 32), train, ref_rng, 3, tencrop)
        assert np.array_equal(fast, ref) and fast_rng.random() == ref_rng.random()


def test_one_rgb_resize_equals_three_band_resizes(aug):
    rng = np.random.default_rng(0)
    for h, w, out in [(37, 53, (20, 31)), (20, 31, (37, 53)), (64, 64, (17, 80)), (9, 5, (1, 1))]:
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        assert np.array_equal(aug.resize(img, out), reference.resize(img, out))
        assert np.array_equal(aug.resize(img[..., :1], out), reference.resize(img[..., :1], out))
        floats = img.astype(np.float32) / 7
        assert np.array_equal(aug.resize(floats, out), reference.resize(floats, out))


@pytest.mark.parametrize("spec", ["random crop", "resized crop", "eval", "ten-crop"])
def test_reduced_decodes_stay_within_the_stated_tolerance(aug, imagefolder, files, spec):
    """large.jpg (640 x 480) resized to 48 x 36 is decoded at 1/4 (160 x 120); without
    normalisation the outputs are levels / 255."""
    augment, train, tencrop = SPECS[spec]
    worst, means = 0, []
    for index in range(4):
        image, _ = imagefolder.ImageFolderDataset([(str(files["large.jpg"]), 0)])[0]
        fast_rng, ref_rng = aug.sample_rng(5, 1, index), aug.sample_rng(5, 1, index)
        fast = aug.build_pipeline(augment, (32, 32), train, tencrop=tencrop)(image, fast_rng)
        ref = reference.pipeline(
            reference.load_image(files["large.jpg"]), augment, (32, 32), train, ref_rng, 3, tencrop
        )
        assert fast_rng.random() == ref_rng.random() and fast.shape == ref.shape
        levels = np.abs(fast - ref) * 255
        worst, means = max(worst, levels.max()), [*means, levels.mean()]
    assert 0 < worst <= DRAFT_MAX + 1e-3 and np.mean(means) <= DRAFT_MEAN


def test_draft_scale_keeps_twice_the_output(aug, imagefolder, files):
    assert aug.draft_scale(640, 480, 48, 36) == 4  # 160 x 120 >= 2 x (48 x 36)
    assert aug.draft_scale(640, 480, 48, 61) == 2  # 480 / 4 < 2 x 61
    assert aug.draft_scale(500, 375, 341, 256) == 1
    assert aug.draft_scale(2048, 1536, 341, 256) == 2
    img, scale = imagefolder.ImageFile(str(files["large.jpg"])).decode(4)
    assert (scale, img.size, img.mode) == (4, (160, 120), "RGB")
    img, scale = imagefolder.ImageFile(str(files["alpha.png"])).decode(4)
    assert (scale, img.size, img.mode) == (1, (80, 64), "RGB")


def test_image_files_decode_fully_as_arrays(imagefolder, files):
    for path in files.values():
        image = imagefolder.ImageFile(str(path))
        assert np.array_equal(np.asarray(image), reference.load_image(path))
        assert np.asarray(image).dtype == np.uint8  # decodes again, the same


@pytest.mark.slow
def test_reduced_decodes_of_large_photos_at_imagenet_sizes(aug, imagefolder, tmp_path):
    """2048 x 1536 photos through the ImageNet transforms: 224 crops from 256 (decoded at
    1024 x 768) and random_resized_crop 224 (the boxes of 896 pixels a side or more)."""
    rng = np.random.default_rng(7)
    paths = [tmp_path / f"{i}.jpg" for i in range(6)]
    for path in paths:
        Image.fromarray(photo(rng, 1536, 2048)).save(path, quality=90)
    rrc = {**RRC, "size": 224}
    for augment, train in [
        ([{"name": "random_crop", "size": 224, "from": 256}, {"name": "hflip"}], True),
        ([rrc, {"name": "hflip"}], True),
        ([{"name": "center_crop", "size": 224, "from": 256}], False),
    ]:
        pipe, levels = aug.build_pipeline(augment, (224, 224), train), []
        for index, path in enumerate(paths):
            fast_rng, ref_rng = aug.sample_rng(0, 0, index), aug.sample_rng(0, 0, index)
            fast = pipe(imagefolder.ImageFile(str(path)), fast_rng)
            full = reference.load_image(path)
            ref = reference.pipeline(full, augment, (224, 224), train, ref_rng)
            assert fast_rng.random() == ref_rng.random()
            levels.append(np.abs(fast - ref) * 255)
        assert 0 < max(d.max() for d in levels) <= DRAFT_MAX + 1e-3
        assert np.mean([d.mean() for d in levels]) <= DRAFT_MEAN
