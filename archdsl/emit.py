"""Writing a backend's output directory: the generated model, the verbatim runtime, a manifest."""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import re
import stat
from pathlib import Path

from archdsl.backends.common.metrics_log import atomic_write
from archdsl.compiler import Checked
from archdsl.shape_summary import render_shape_table

MANIFEST = ".archdsl-manifest.json"
MANIFEST_LIMIT = 1 << 20  # bytes; a real manifest is about 1 KB
BYTECODE = "__pycache__"
MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\.py")  # every file name a backend writes
SHA256 = re.compile(r"[0-9a-f]{64}")


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
    files["shape_table.py"] = render_shape_table(checked.report, Path(checked.file).name)
    return files


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _file_digest(path: Path) -> str:
    """The SHA-256 of a file's bytes, read in chunks."""
    sha = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 16):
            sha.update(chunk)
    return sha.hexdigest()


def _is_regular(path: Path) -> bool:
    """True for a regular file that is not a symbolic link."""
    try:
        return stat.S_ISREG(path.lstat().st_mode)
    except FileNotFoundError:
        return False


def _known_files(out: Path, force: bool) -> dict[str, str]:
    """The manifest's {file name: SHA-256}; {} without one, or with a bad one under --force."""
    path = out / MANIFEST
    if not os.path.lexists(path):
        return {}
    try:
        return _parse_manifest(path)
    except EmitError:
        if force:
            return {}
        raise


def _parse_manifest(path: Path) -> dict[str, str]:
    """Read and validate a manifest; EmitError (saying what to do) when it is unusable."""
    if not _is_regular(path):
        raise _bad_manifest(path, "not a regular file")
    if path.stat().st_size > MANIFEST_LIMIT:
        raise _bad_manifest(path, f"larger than {MANIFEST_LIMIT // 1024} KiB")
    try:
        data = json.loads(path.read_bytes())
    except (ValueError, RecursionError):
        raise _bad_manifest(path, "not JSON") from None
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict):
        raise _bad_manifest(path, "no `files` table")
    for name, digest in files.items():
        if not _plain_entry(name, digest):
            raise _bad_manifest(path, f"unsafe or malformed entry {name[:60]!r}")
    return files


def _bad_manifest(path: Path, problem: str) -> EmitError:
    """The error for a manifest archdsl cannot have written."""
    return EmitError(
        f"{path}: {problem}, not a manifest archdsl wrote; "
        f"remove {path.parent} or pass --force to overwrite it"
    )


def _plain_entry(name: str, digest) -> bool:
    """A manifest entry naming a plain module file of the folder, with a SHA-256."""
    return (
        bool(MODULE_NAME.fullmatch(name))
        and isinstance(digest, str)
        and bool(SHA256.fullmatch(digest))
    )


def _foreign(out: Path, known: dict[str, str]) -> list[str]:
    """Files in `out` that archdsl did not write, or that were edited since."""
    foreign = []
    for entry in sorted(out.iterdir()):
        if entry.name in (MANIFEST, BYTECODE):
            continue
        if not _is_regular(entry) or entry.name not in known:
            foreign.append(entry.name)
        elif _file_digest(entry) != known[entry.name]:
            foreign.append(f"{entry.name} (edited since archdsl wrote it)")
    return foreign


def write_output(checked: Checked, backend: str, out: Path, force: bool = False) -> list[Path]:
    """Write all files into `out`, refusing to clobber anything archdsl did not write.

    Nothing outside `out` is ever written or deleted, symbolic links inside it are replaced,
    never followed, and an I/O problem is an EmitError naming the folder.
    """
    try:
        return _write_output(checked, backend, out, force)
    except OSError as exc:
        raise EmitError(f"{out}: cannot write the output here: {exc.strerror or exc}") from None


def _write_output(checked: Checked, backend: str, out: Path, force: bool) -> list[Path]:
    """write_output without the translation of OSError."""
    if out.exists() and not out.is_dir():
        raise EmitError(f"{out}: exists and is not a directory")
    exists = out.exists()
    known = _known_files(out, force) if exists else {}
    if exists and not force:
        foreign = _foreign(out, known)
        if foreign:
            shown = ", ".join(foreign[:5]) + (
                f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
            )
            raise EmitError(
                f"{out}: refusing to overwrite files archdsl did not write: {shown}; "
                "choose another output directory, or pass --force"
            )
    files = generated_files(checked, backend)
    out.mkdir(parents=True, exist_ok=True)
    removed = _remove_stale(out, known, set(files))
    written = []
    for name, text in files.items():
        _write_text(out / name, text)
        written.append(out / name)
    manifest = {
        "backend": backend,
        "spec": checked.file,
        "files": {n: _digest(t) for n, t in files.items()},
    }
    _write_text(out / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    _remove_bytecode(out, set(files) | removed)
    return written


def _remove_stale(out: Path, known: dict[str, str], keep: set[str]) -> set[str]:
    """Delete the files an earlier compile wrote (unchanged since) that this one does not."""
    removed = set()
    for name in sorted(set(known) - keep):
        path = out / name
        if _is_regular(path) and _file_digest(path) == known[name]:
            path.unlink()
            removed.add(name)
    return removed


def _remove_bytecode(out: Path, modules: set[str]) -> None:
    """Delete __pycache__/<module>.*.pyc of the given modules, and the folder if that empties it."""
    cache = out / BYTECODE
    if cache.is_symlink() or not cache.is_dir():
        return
    stems = {name.removesuffix(".py") for name in modules}
    for entry in cache.iterdir():
        stem, dot, _ = entry.name.partition(".")
        if dot and stem in stems and entry.name.endswith(".pyc") and _is_regular(entry):
            entry.unlink()
    try:
        cache.rmdir()
    except OSError:
        pass  # something else is kept there: leave it


def _write_text(path: Path, text: str) -> None:
    """Write UTF-8 text atomically, with the mode the umask gives a new file."""
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))
