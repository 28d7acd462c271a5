"""ImageFolder data: root/train/<class>/* and root/val/<class>/*, checked before training."""

from pathlib import Path

import numpy as np
from PIL import Image

IMAGE_EXTENSIONS = (
    ".bmp",
    ".gif",
    ".jpeg",
    ".jpg",
    ".pgm",
    ".png",
    ".ppm",
    ".tif",
    ".tiff",
    ".webp",
)
LAYOUT = "DIR/train/<class>/*.jpg and DIR/val/<class>/*.jpg"
MAX_ASPECT = 64  # longer side / shorter side of an image the pipeline accepts


class DataError(Exception):
    """A problem with the user's data, reported as one line without a traceback."""


def entries(folder):
    """The sorted paths in a folder, without hidden ones (.name, as macOS's ._photo.jpg)."""
    try:
        return sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    except OSError as err:
        raise DataError(
            f"{folder}: cannot list the folder ({err.strerror or err})"
        ) from None


def list_classes(split_dir):
    """Return {class name: sorted image paths} of one split folder."""
    if not split_dir.is_dir():
        raise DataError(
            f"{split_dir}: split folder not found; expected the layout {LAYOUT}"
        )
    class_dirs = [p for p in entries(split_dir) if p.is_dir()]
    if not class_dirs:
        raise DataError(
            f"{split_dir}: no class folders; put each class's images in {split_dir}/<class>/"
        )
    classes = {}
    for class_dir in class_dirs:
        files = [
            p
            for p in entries(class_dir)
            if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
        ]
        if not files:
            raise DataError(
                f"{class_dir}: class folder has no images ({', '.join(IMAGE_EXTENSIONS)}); "
                "add images or remove the folder"
            )
        classes[class_dir.name] = files
    return classes


def labelled(classes, names):
    """Flatten {class: paths} into [(path string, label)] with labels from the order of names."""
    return [
        (str(path), label) for label, name in enumerate(names) for path in classes[name]
    ]


def scan_imagefolder(root, num_classes):
    """Return (train items, val items, class names); items are (path, label) pairs."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: data folder not found; --data expects {LAYOUT}")
    train = list_classes(root / "train")
    names = sorted(train)
    if len(names) != num_classes:
        raise DataError(
            f"{root / 'train'}: {len(names)} class folders but the model has {num_classes} "
            "outputs; make the folder count match the spec's last layer"
        )
    val = list_classes(root / "val")
    if sorted(val) != names:
        only_train, only_val = (
            sorted(set(names) - set(val)),
            sorted(set(val) - set(names)),
        )
        raise DataError(
            f"{root / 'val'}: class folders differ from train/ (only in train: {only_train}, "
            f"only in val: {only_val}); use the same class folder names in both splits"
        )
    return labelled(train, names), labelled(val, names), names


def load_image(path):
    """Decode an image file fully into a uint8 HxWx3 RGB array; bad files raise DataError."""
    try:
        with Image.open(path) as img:
            width, height = img.size
            if max(width, height) > MAX_ASPECT * min(width, height):
                raise DataError(
                    f"{path}: {width} x {height} pixels, an aspect ratio over {MAX_ASPECT}:1 "
                    "(resizing its shorter side to the crop size would make a strip of "
                    "millions of pixels); crop or remove the file"
                )
            img.load()
            return np.asarray(img.convert("RGB"))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise DataError(
            f"{path}: cannot read image ({err}); remove or replace the file"
        ) from None


class ImageFolderDataset:
    """Items from scan_imagefolder, decoded on access."""

    def __init__(self, items):
        """Keep the (path, label) pairs."""
        self.items = items

    def __len__(self):
        """Number of images."""
        return len(self.items)

    def __getitem__(self, i):
        """Return (uint8 HxWx3 image, label)."""
        path, label = self.items[i]
        return load_image(path), label
