"""A Keras output directory as the compiler lays it out: the runtime files beside a model.py
(the fixture's, or a test's own)."""

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = [ROOT / "backends" / "common", ROOT / "backends" / "keras" / "runtime"]
FIXTURE_MODEL = Path(__file__).parent / "fixtures" / "model.py"
FIXTURE_TABLE = Path(__file__).parent / "fixtures" / "shape_table.py"


def assemble(dest, model=FIXTURE_MODEL):
    """Copy the runtime modules and a model.py into dest, as the compiler lays them out."""
    dest.mkdir(parents=True, exist_ok=True)
    for folder in RUNTIME:
        for src in folder.glob("*.py"):
            if src.name != "__init__.py":
                shutil.copy(src, dest / src.name)
    shutil.copy(model, dest / "model.py")
    shutil.copy(FIXTURE_TABLE, dest / "shape_table.py")  # compile's shape table
    return dest
