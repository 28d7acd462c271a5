"""ImageFolder data: the happy path and every data error, in-process and through train.py."""

import os
import shutil

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("torch")


@pytest.fixture
def imagefolder(load):
    """The imagefolder module."""
    return load("imagefolder")


@pytest.fixture
def folder(tmp_path):
    """A tiny PNG dataset: 10 classes x 2 images in train/ and val/ (20x24, RGB and gray)."""
    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    for split in ("train", "val"):
        for c in range(10):
            d = root / split / f"class{c}"
            d.mkdir(parents=True)
            Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(d / "a.png")
            Image.fromarray(rng.integers(0, 256, (24, 20), dtype=np.uint8)).save(d / "b.png")
    (root / "train" / "class0" / "notes.txt").write_text("not an image")
    return root


def truncate(path):
    """Cut an image file in half."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_scan_lists_sorted_classes_and_labels(imagefolder, folder):
    train, val, classes = imagefolder.scan_imagefolder(folder, 10)
    assert classes == [f"class{c}" for c in range(10)]
    assert len(train) == len(val) == 20
    assert train[:3] == [
        (str(folder / "train" / "class0" / "a.png"), 0),
        (str(folder / "train" / "class0" / "b.png"), 0),
        (str(folder / "train" / "class1" / "a.png"), 1),
    ]
    image, label = imagefolder.ImageFolderDataset(val)[3]
    img = np.asarray(image)  # an ImageFile, decoded by the pipeline or by np.asarray
    assert img.shape == (24, 20, 3) and img.dtype == np.uint8 and label == 1


def break_folder(root, case):
    """Damage the dataset as `case` says; returns the path the error must name."""
    if case == "missing root":
        return root / "nope"
    if case == "missing split":
        shutil.rmtree(root / "val")
        return root / "val"
    if case == "empty class":
        for p in (root / "train" / "class3").glob("*.png"):
            p.unlink()
        return root / "train" / "class3"
    if case == "class count":
        shutil.rmtree(root / "train" / "class9")
        return root / "train"
    if case == "val classes":
        (root / "val" / "class9").rename(root / "val" / "other")
        return root / "val"
    if case == "not an image":
        (root / "train" / "class5" / "c.jpg").write_bytes(b"GIF89a garbage")
        return root / "train" / "class5" / "c.jpg"
    truncate(root / "train" / "class4" / "a.png")
    return root / "train" / "class4" / "a.png"


MESSAGES = {
    "missing root": "data folder not found",
    "missing split": "split folder not found",
    "empty class": "class folder has no images",
    "class count": "9 class folders but the model has 10 outputs",
    "val classes": "only in train: ['class9'], only in val: ['other']",
    "not an image": "cannot read image",
    "truncated": "cannot read image (image file is truncated)",
}


@pytest.mark.parametrize("case", list(MESSAGES))
def test_scan_and_load_raise_data_error(imagefolder, folder, case):
    path = break_folder(folder, case)
    with pytest.raises(imagefolder.DataError) as err:
        train, _, _ = imagefolder.scan_imagefolder(path if case == "missing root" else folder, 10)
        for item, _ in train:
            imagefolder.load_image(item)
    assert MESSAGES[case] in str(err.value) and str(path) in str(err.value)
    assert "\n" not in str(err.value)


def test_train_on_an_image_folder(run_train, folder, tmp_path):
    out = tmp_path / "run"
    result = run_train(
        "--data", folder, "--epochs", 1, "--batch-size", 8, "--workers", 0, "--out", out
    )
    assert result.returncode == 0, result.stderr
    assert "20 train / 20 val images (ImageFolder" in result.stdout
    assert len((out / "metrics.csv").read_text().splitlines()) == 2


@pytest.mark.parametrize(
    ("case", "workers"),
    [
        ("missing split", 0),
        ("empty class", 0),
        ("class count", 0),
        ("val classes", 0),
        ("truncated", 0),
        ("truncated", 1),
    ],
)
def test_train_reports_data_errors_without_traceback(run_train, folder, tmp_path, case, workers):
    path = break_folder(folder, case)
    args = ("--data", folder, "--epochs", 1, "--batch-size", 5, "--workers", workers)
    result = run_train(*args, "--out", tmp_path / "run")
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and MESSAGES[case] in last and str(path) in last
    assert "Traceback" not in result.stderr + result.stdout


def test_hidden_files_and_macos_companions_are_skipped(imagefolder, folder):
    for split in ("train", "val"):
        (folder / split / "class2" / "._a.png").write_bytes(b"\x00\x05\x16\x07AppleDouble")
        (folder / split / "class2" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
        (folder / split / "._class0").write_bytes(b"\x00\x05\x16\x07")
    (folder / "train" / "class7" / ".hidden.jpg").write_bytes(b"not an image")
    train, val, classes = imagefolder.scan_imagefolder(folder, 10)
    assert len(train) == len(val) == 20 and len(classes) == 10
    assert not any("/." in path for path, _ in train + val)
    for path, _ in train + val:
        imagefolder.load_image(path)


def test_a_class_of_only_hidden_files_has_no_images(imagefolder, folder):
    for p in (folder / "train" / "class3").glob("*.png"):
        p.rename(p.with_name(f"._{p.name}"))
    with pytest.raises(imagefolder.DataError, match="class3: class folder has no images"):
        imagefolder.scan_imagefolder(folder, 10)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads folders without read permission")
def test_an_unreadable_class_folder_is_a_data_error(imagefolder, folder):
    locked = folder / "train" / "class1"
    locked.chmod(0)
    try:
        with pytest.raises(imagefolder.DataError, match="class1: cannot list the folder"):
            imagefolder.scan_imagefolder(folder, 10)
    finally:
        locked.chmod(0o755)


def test_a_thin_strip_of_an_image_is_a_data_error_before_decoding(imagefolder, tmp_path):
    """A 2 KB PNG of 1 x 2,000,000 pixels would be resized to 72 x 144,000,000 (31 GB) by the
    shorter-side resize: it is refused from its header, with its size in the message."""
    path = tmp_path / "thin.png"
    Image.fromarray(np.zeros((1, 2_000_000), np.uint8)).save(path)
    assert path.stat().st_size < 10_000
    with pytest.raises(imagefolder.DataError) as err:
        imagefolder.load_image(path)
    assert f"{path}: 2000000 x 1 pixels, an aspect ratio over 64:1" in str(err.value)
    wide = tmp_path / "wide.png"  # 64:1 exactly is accepted
    Image.fromarray(np.zeros((2, 128, 3), np.uint8)).save(wide)
    assert imagefolder.load_image(wide).shape == (2, 128, 3)
