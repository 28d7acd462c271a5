"""Helpers: check spec text, compile it for PyTorch into a directory, import its model.py."""

import importlib.util
import itertools
import sys
from pathlib import Path

from archdsl.compiler import check_source
from archdsl.emit import write_output

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted((ROOT / "specs").rglob("*.arch"))
_serial = itertools.count()


def check(source, file="inline.arch"):
    """Check spec text; fail the test on any error diagnostic."""
    checked = check_source(source, file)
    errors = [f"{d.code}: {d.message}" for d in checked.diagnostics if d.severity == "error"]
    assert checked.ok and not errors, errors
    return checked


def check_file(path):
    """Check a spec file."""
    return check(Path(path).read_text(encoding="utf-8"), str(path))


def compile_to(checked, dest):
    """Write the torch output directory of a checked spec; returns the directory."""
    write_output(checked, "torch", dest, force=True)
    return dest


def import_model(directory):
    """Import directory/model.py under a fresh name, with its own runtime siblings.

    The siblings (optim, schedules, ...) are imported from `directory` and dropped from
    sys.modules afterwards, so that another output directory (or backend) gets its own.
    """
    siblings = [p.stem for p in Path(directory).glob("*.py") if p.name != "model.py"]
    saved = {name: sys.modules.pop(name) for name in siblings if name in sys.modules}
    sys.path.insert(0, str(directory))
    try:
        spec = importlib.util.spec_from_file_location(
            f"torch_model_{next(_serial)}", Path(directory) / "model.py"
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(directory))
        for name in siblings:
            sys.modules.pop(name, None)
        sys.modules.update(saved)
    return module
