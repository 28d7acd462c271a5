"""Both compiled trainers on hostile and careless input: checkpoints, data folders, run folders.

Every case of a backend runs through its train.main() in one process (the framework is
imported once; each call under a CASE_SECONDS alarm, so a hang fails instead of waiting), after
the inputs are laid out in one folder; nothing in that folder but the cases' run folders may
change. tests/torch_runtime and tests/keras_runtime check flags, --out, locks, damaged
checkpoints and broken images in depth; these are the cases they leave out.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hostile_harness import (
    CLASSES,
    QUICK,
    RunsCode,
    Untouched,
    image_folder,
    png,
    refused_in_process,
    train_main_calls,
)
from PIL import Image

BACKENDS = ["torch", "keras"]
CHECKPOINT = {"torch": "last.pt", "keras": "last.npz"}
IS_ROOT = os.geteuid() == 0  # root reads files without read permission


def bomb_png(width: int = 30_000, height: int = 30_000) -> bytes:
    """A 57-byte PNG whose header claims width x height pixels (PIL refuses it as a
    decompression bomb before decoding)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def junk_folder(root: Path) -> Path:
    """An image folder holding what a careless copy brings along: macOS AppleDouble files
    (._x.jpg) and .DS_Store, hidden files and folders, a FIFO and a link to /dev/zero named
    like images. Training must skip them all, without reading one."""
    image_folder(root)
    for split in ("train", "val"):
        (root / split / "._a").write_bytes(b"\x00\x05\x16\x07AppleDouble")
        (root / split / ".cache").mkdir()
        png(root / split / ".cache" / "0.png")
        for name in CLASSES:
            folder = root / split / name
            (folder / "._x.jpg").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X")
            (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
            (folder / ".hidden.png").write_bytes(b"not an image")
            os.mkfifo(folder / "fifo.png")
            (folder / "zero.png").symlink_to("/dev/zero")
    return root


BOMB_NAME = os.fsdecode(b"bomb\xff\x1b[2J.png")


def bomb_folder(root: Path) -> Path:
    """An image folder with a decompression bomb (under a name to escape) among the validation
    images (all of which are read after the one step, with --val-steps 2)."""
    image_folder(root)
    (root / "val" / "b" / BOMB_NAME).write_bytes(bomb_png())
    return root


def thin_folder(root: Path) -> Path:
    """An image folder with a 1 x 2,000,000 PNG among the validation images: 2 KB on disk, but
    resizing its shorter side to the input size would make a strip of 16 million pixels."""
    image_folder(root)
    Image.fromarray(np.zeros((1, 2_000_000), np.uint8)).save(root / "val" / "a" / "thin.png")
    return root


def locked_folder(root: Path) -> Path:
    """An image folder with a validation image nobody may read."""
    image_folder(root)
    (root / "val" / "a" / "0.png").chmod(0)
    return root


def pickled_checkpoint(backend: str, path: Path, victim: Path) -> None:
    """A checkpoint whose pickle would create `victim`: for PyTorch a bare pickle (torch.load
    reads it as its legacy format; tests/torch_runtime has the zip format), for Keras an .npz
    with an object array."""
    code = RunsCode(open, str(victim), "w")
    if backend == "torch":
        path.write_bytes(pickle.dumps({"model_name": code, "state": code}, protocol=2))
    else:
        buffer = io.BytesIO()
        np.savez(buffer, meta=np.array([code], dtype=object), **{"model/00000": np.zeros(2)})
        path.write_bytes(buffer.getvalue())


def cases(root: Path, backend: str) -> dict[str, list]:
    """{case: train.py argv}, their inputs laid out under root, each run folder root/runs/CASE."""
    runs = root / "runs"
    os.mkfifo(root / "fifo")
    (root / "folder").mkdir()
    victims = root / "victims"
    victims.mkdir()
    argvs = {
        "resume /dev/zero": ["--resume", "/dev/zero"],
        "resume a FIFO": ["--resume", root / "fifo"],
        "resume a folder": ["--resume", root / "folder"],
        "data /dev/zero": ["--data", "/dev/zero"],
        "data a FIFO": ["--data", root / "fifo"],
        "junk in the data": ["--data", junk_folder(root / "junk")],
        "a decompression bomb": ["--data", bomb_folder(root / "bomb"), "--val-steps", "2"],
        "a thin image": ["--data", thin_folder(root / "thin")],
        "links in the run folder": [],
        "the lock is a link": [],
        "a pickle that runs code": ["--resume"],
        "a synthetic set too large to index": ["--synthetic-per-class", "999999999999"],
    }
    if not IS_ROOT:
        argvs["an unreadable image"] = ["--data", locked_folder(root / "locked")]
    for case in argvs:
        (runs / case).mkdir(parents=True)
    for name in (CHECKPOINT[backend], "metrics.csv", "metrics.png"):
        (victims / name).write_text("mine")
        (runs / "links in the run folder" / name).symlink_to(victims / name)
    (victims / ".lock").write_text("mine")
    (runs / "the lock is a link" / ".lock").symlink_to(victims / ".lock")
    checkpoint = runs / "a pickle that runs code" / CHECKPOINT[backend]
    pickled_checkpoint(backend, checkpoint, victims / "created_by_the_checkpoint")
    return {case: [*QUICK, "--out", runs / case, *argv] for case, argv in argvs.items()}


@pytest.fixture(scope="module", params=BACKENDS)
def outcome(request, builds, tmp_path_factory):
    """(backend, {case: train.main() result}, the inputs' folder, what changed outside the
    run folders)."""
    backend = request.param
    root = tmp_path_factory.mktemp(f"hostile_{backend}_trainer")
    argvs = cases(root, backend)
    watch = Untouched(root, root / "runs").start()
    results = train_main_calls(builds[backend], list(argvs.values()))
    changed = watch.changes()
    return backend, dict(zip(argvs, results, strict=True)), root, changed


def result_of(outcome, case: str) -> dict:
    """The result of one case, once nothing outside the run folders changed."""
    backend, results, root, changed = outcome
    assert changed == [], f"changed outside the run folders: {changed}"
    if case not in results:
        pytest.skip("root reads files without read permission")
    return results[case]


NO_CHECKPOINT = "no checkpoint to resume from; run without --resume first"
NO_DATA = "data folder not found; --data expects DIR/train/<class>/*.jpg"


@pytest.mark.parametrize(
    "case, says",
    [
        ("resume /dev/zero", f"error: /dev/zero: {NO_CHECKPOINT}"),
        ("resume a FIFO", f"/fifo: {NO_CHECKPOINT}"),
        ("resume a folder", f"/folder: {NO_CHECKPOINT}"),
        ("data /dev/zero", f"error: /dev/zero: {NO_DATA}"),
        ("data a FIFO", f"/fifo: {NO_DATA}"),
        (
            "a decompression bomb",
            "/val/b/bomb\\udcff\\x1b[2J.png: cannot read image (Image size (900000000 pixels) exceeds",
        ),
        ("a thin image", "/val/a/thin.png: 2000000 x 1 pixels, an aspect ratio over 64:1"),
        ("an unreadable image", "/val/a/0.png: cannot read image ([Errno 13] Permission denied"),
        ("the lock is a link", "cannot write the run there (Too many levels of symbolic links)"),
    ],
)
def test_what_is_not_a_file_or_not_readable_is_one_line_and_exit_2(outcome, case, says):
    result = result_of(outcome, case)
    refused_in_process(result, says)
    if "image" not in case and "bomb" not in case:  # images are decoded as training reads them
        assert result["stdout"] == ""


def test_a_checkpoint_whose_pickle_would_create_a_file_is_refused(outcome):
    backend, _, root, _ = outcome
    result = result_of(outcome, "a pickle that runs code")
    says = {
        "torch": ("refused to load", "run code (io.open)"),
        "keras": ("member meta.npy: dtype '|O' is not a plain little-endian float or integer",),
    }
    checkpoint = root / "runs" / "a pickle that runs code" / CHECKPOINT[backend]
    refused_in_process(result, f"error: {checkpoint}: ", *says[backend])
    assert not (root / "victims" / "created_by_the_checkpoint").exists()


def test_junk_in_a_data_folder_is_skipped_unread(outcome):
    result = result_of(outcome, "junk in the data")
    assert result["crash"] is None and result["code"] == 0, result
    assert "4 train / 2 val images (ImageFolder " in result["stdout"]


def test_links_in_the_run_folder_are_replaced_never_written_through(outcome):
    backend, _, root, _ = outcome
    result = result_of(outcome, "links in the run folder")
    assert result["crash"] is None and result["code"] == 0, result
    run = root / "runs" / "links in the run folder"
    for name in (CHECKPOINT[backend], "metrics.csv", "metrics.png"):
        assert not (run / name).is_symlink() and (run / name).stat().st_size > 4
        assert (root / "victims" / name).read_text() == "mine"


def test_a_synthetic_set_too_large_to_index_is_one_line(outcome):
    result = result_of(outcome, "a synthetic set too large to index")
    refused_in_process(result, "error: --synthetic-per-class 999999999999: ", "; at most ")
