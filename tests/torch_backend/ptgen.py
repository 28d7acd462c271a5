"""Helpers: check spec text, compile it for PyTorch into a directory, import its model.py."""

from pathlib import Path

from archdsl.compiler import check_source
from archdsl.emit import write_output
from archdsl.generated import import_model  # noqa: F401 (the tests import it from here)

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted((ROOT / "specs").rglob("*.arch"))


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
