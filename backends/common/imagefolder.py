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


READ_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


def unreadable(path, err):
    """The DataError of an image file Pillow cannot open or decode."""
    return DataError(f"{path}: cannot read image ({err}); remove or replace the file")


def open_image(path):
    """Open an image file (its header only), refusing thin strips; bad files raise
    DataError."""
    try:
        img = Image.open(path)
    except READ_ERRORS as err:
        raise unreadable(path, err) from None
    width, height = img.size
    if max(width, height) > MAX_ASPECT * min(width, height):
        img.close()
        raise DataError(
            f"{path}: {width} x {height} pixels, an aspect ratio over {MAX_ASPECT}:1 "
            "(resizing its shorter side to the crop size would make a strip of "
            "millions of pixels); crop or remove the file"
        )
    return img


def decode_rgb(path, img, reduce):
    """(RGB image, scale) of an opened file, a JPEG decoded at 1/scale of its size by
    libjpeg's DCT scaling (scale: the largest of 1, 2, 4, 8 that is at most reduce),
    other formats at full size (scale 1); the file is closed. Bad files raise DataError."""
    width, height = img.size
    try:
        drafted = (
            img.draft("RGB", (width // reduce, height // reduce))
            if reduce > 1
            else None
        )
        img.load()
        # a file Pillow keeps open after loading (multi-frame formats) is copied, closed
        keep = img.mode == "RGB" and getattr(img, "fp", None) is None
        rgb = img if keep else img.convert("RGB")
    except READ_ERRORS as err:
        img.close()
        raise unreadable(path, err) from None
    if not keep:
        img.close()
    return rgb, 1 if drafted is None else round(width / drafted[1][2])


class ImageFile:
    """An image file decoded on demand: np.asarray(file) decodes it fully (uint8 HxWx3
    RGB); the pipeline's resizes read `size` and decode() it at a reduced size where
    that is exact enough (augment.py)."""

    def __init__(self, path):
        """Keep the path; the file is opened when first asked."""
        self.path, self.opened = path, None

    @property
    def size(self):
        """(width, height) of the full image, from the file's header."""
        if self.opened is None:
            self.opened = open_image(self.path)
        return self.opened.size

    def decode(self, reduce=1):
        """(RGB PIL image, scale): decode_rgb() of the file (opened anew if decoded before)."""
        img = open_image(self.path) if self.opened is None else self.opened
        self.opened = None
        return decode_rgb(self.path, img, reduce)

    def __array__(self, dtype=None, copy=None):
        """The full-size uint8 HxWx3 RGB pixels."""
        return np.asarray(self.decode()[0], dtype=dtype)


def load_image(path):
    """Decode an image file fully into a uint8 HxWx3 RGB array; bad files raise DataError."""
    return np.asarray(ImageFile(path))


class ImageFolderDataset:
    """Items from scan_imagefolder, decoded by the pipeline that reads them."""

    def __init__(self, items):
        """Keep the (path, label) pairs."""
        self.items = items

    def __len__(self):
        """Number of images."""
        return len(self.items)

    def __getitem__(self, i):
        """Return (ImageFile, label): np.asarray(image) is its uint8 HxWx3 pixels."""
        path, label = self.items[i]
        return ImageFile(path), label
