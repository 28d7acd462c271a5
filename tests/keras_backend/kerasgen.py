"""Helpers: check spec text, compile it for Keras into a directory, import its model.py."""

import importlib.util
import itertools
import sys
from pathlib import Path

from archdsl.compiler import check_source
from archdsl.emit import write_output

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted((ROOT / "specs").rglob("*.arch")) + sorted(
    (Path(__file__).parent / "specs").glob("*.arch")
)
_serial = itertools.count()


def check(source, file="inline.arch"):
    """Check spec text; fail the test on any error diagnostic."""
    checked = check_source(source, file)
    errors = [f"{d.code}: {d.message}" for d in checked.diagnostics if d.severity == "error"]
    assert checked.ok and not errors, errors
    return checked


def compile_to(checked, dest):
    """Write the Keras output directory of a checked spec; returns the directory."""
    write_output(checked, "keras", dest, force=True)
    return dest


def import_model(directory):
    """Import directory/model.py under a fresh name, its runtime siblings importable."""
    sys.path.insert(0, str(directory))
    try:
        name = f"keras_model_{next(_serial)}"
        spec = importlib.util.spec_from_file_location(name, directory / "model.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(directory))
    return module


def keras_shape(shape):
    """An IR shape (C, H, W) in Keras's channels-last order (H, W, C)."""
    return (*shape[1:], shape[0]) if len(shape) == 3 else tuple(shape)
