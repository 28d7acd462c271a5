"""Importing a generated model.py in-process, with the runtime modules copied beside it."""

from __future__ import annotations

import importlib.util
import itertools
import sys
from pathlib import Path

_serial = itertools.count()


def import_model(directory: Path):
    """Import directory/model.py under a fresh name, with its own runtime siblings.

    The siblings (weights, optim, schedules, ...) are imported from `directory` and dropped from
    sys.modules afterwards, so that another output directory (or backend) gets its own.
    """
    return import_module_in(directory, "model")


def import_module_in(directory: Path, stem: str):
    """Import directory/STEM.py under a fresh name, its siblings imported as import_model does."""
    siblings = [p.stem for p in Path(directory).glob("*.py") if p.stem != stem]
    saved = {name: sys.modules.pop(name) for name in siblings if name in sys.modules}
    sys.path.insert(0, str(directory))
    try:
        spec = importlib.util.spec_from_file_location(
            f"archdsl_{stem}_{next(_serial)}", Path(directory) / f"{stem}.py"
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(directory))
        for name in siblings:
            sys.modules.pop(name, None)
        sys.modules.update(saved)
    return module
