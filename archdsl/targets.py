"""Output files a command may write: absent, written by archdsl before, or allowed by --force."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path


class TargetError(Exception):
    """An output file that must not be written (a one-line message)."""


def check_target(
    out: Path, force: bool, ours: Callable[[Path], bool], kind: str, verb: str
) -> None:
    """TargetError unless `out` is absent, a regular file `ours` recognises, or --force allows it.

    `kind` names the file expected (".onnx file"), `verb` what archdsl does to write it ("export").
    """
    if not os.path.lexists(out):
        return
    mode = out.lstat().st_mode
    if stat.S_ISDIR(mode):
        raise TargetError(f"{out}: is a directory, expected the {kind} to write")
    if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
        raise TargetError(f"{out}: not a regular file (a device, FIFO or socket?)")
    if not force and not (stat.S_ISREG(mode) and ours(out)):
        raise TargetError(
            f"{out}: refusing to overwrite a file archdsl did not {verb}; "
            "choose another output file, or pass --force"
        )
