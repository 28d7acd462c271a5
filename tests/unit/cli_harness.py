"""Running `python -m archdsl` on hostile input: one-line errors, and what changed on disk."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TINY = "model Tiny\ninput image: 3 x 8 x 8\nlogits = flatten |> dense(2)\n"


def archdsl(*args, cwd: Path = ROOT, env: dict | None = None, timeout: float = 60, **options):
    """Run the CLI in a fresh interpreter; arguments may be str, bytes or paths."""
    return subprocess.run(
        [sys.executable, "-m", "archdsl", *map(os.fsencode, args)],
        cwd=cwd,
        env={**os.environ, "NO_COLOR": "1", **(env or {})},
        capture_output=True,
        timeout=timeout,
        **options,
    )


def one_line_error(done, code: int = 2) -> str:
    """The single stderr line of a run that failed with `code` (and no traceback)."""
    err = done.stderr.decode("utf-8", "replace")
    assert done.returncode == code, err
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


def snapshot(root: Path, skip: Path | None = None) -> dict[str, tuple]:
    """Every entry under root (symbolic links not followed) with its kind, mode and content hash."""
    state = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            if skip is not None and (path == skip or skip in path.parents):
                continue
            info = path.lstat()
            if path.is_symlink():
                content = os.readlink(path)
            elif path.is_file():
                content = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                content = None
            state[str(path.relative_to(root))] = (info.st_mode, content)
    return state


def tiny_spec(folder: Path, name: str = "tiny.arch") -> Path:
    """A small valid spec in `folder`."""
    spec = folder / name
    spec.write_text(TINY, encoding="utf-8")
    return spec
