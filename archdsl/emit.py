"""Writing a backend's output directory: the generated model, the verbatim runtime, a manifest."""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from archdsl.compiler import Checked

MANIFEST = ".archdsl-manifest.json"
IGNORED = {"__pycache__", MANIFEST}


class EmitError(Exception):
    """The output directory cannot be written safely."""


def _backends_dir() -> Path:
    """Where the backend sources live: beside the package in a checkout, inside it when installed."""
    import archdsl.backends

    return Path(archdsl.backends.__file__).resolve().parent


def runtime_files(backend: str) -> dict[str, str]:
    """The static modules copied verbatim: backends/common/*.py and backends/<backend>/runtime/*.py."""
    root = _backends_dir()
    files: dict[str, str] = {}
    for folder in (root / "common", root / backend / "runtime"):
        for path in sorted(folder.glob("*.py")):
            if path.name != "__init__.py":
                files[path.name] = path.read_text(encoding="utf-8")
    return files


def generated_files(checked: Checked, backend: str) -> dict[str, str]:
    """Every file of the output directory, by name, as text."""
    emitter = importlib.import_module(f"archdsl.backends.{backend}.emitter")
    files = runtime_files(backend)
    files["model.py"] = emitter.render_model(checked.graph, checked.report, Path(checked.file).name)
    return files


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _foreign(out: Path) -> list[str]:
    """Files in `out` that archdsl did not write, or that were edited since."""
    manifest_path = out / MANIFEST
    try:
        known = json.loads(manifest_path.read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        known = {}
    foreign = []
    for entry in sorted(out.iterdir()):
        if entry.name in IGNORED:
            continue
        if not entry.is_file() or entry.name not in known:
            foreign.append(entry.name)
            continue
        if _digest(entry.read_text(encoding="utf-8", errors="replace")) != known[entry.name]:
            foreign.append(f"{entry.name} (edited since archdsl wrote it)")
    return foreign


def write_output(checked: Checked, backend: str, out: Path, force: bool = False) -> list[Path]:
    """Write all files into `out`, refusing to clobber anything archdsl did not write."""
    if out.exists() and not out.is_dir():
        raise EmitError(f"{out}: exists and is not a directory")
    if out.exists() and not force:
        foreign = _foreign(out)
        if foreign:
            shown = ", ".join(foreign[:5]) + (
                f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
            )
            raise EmitError(
                f"{out}: refusing to overwrite files archdsl did not write: {shown}; "
                "choose another directory with -o, or pass --force"
            )
    files = generated_files(checked, backend)
    out.mkdir(parents=True, exist_ok=True)
    _remove_stale(out, set(files))
    written = []
    for name, text in files.items():
        _atomic_write(out / name, text)
        written.append(out / name)
    manifest = {
        "backend": backend,
        "spec": checked.file,
        "files": {n: _digest(t) for n, t in files.items()},
    }
    _atomic_write(out / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    shutil.rmtree(out / "__pycache__", ignore_errors=True)
    return written


def _remove_stale(out: Path, keep: set[str]) -> None:
    """Delete files an earlier compile wrote that this one does not."""
    try:
        known = json.loads((out / MANIFEST).read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return
    for name in set(known) - keep:
        path = out / name
        if (
            path.is_file()
            and _digest(path.read_text(encoding="utf-8", errors="replace")) == known[name]
        ):
            path.unlink()


def _atomic_write(path: Path, text: str) -> None:
    """Write via a temporary file in the same directory and rename over the target."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
