"""Fixtures: a Keras output directory assembled from the runtime files and a fixture model.py."""

import functools
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

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


@pytest.fixture(scope="session")
def outdir(tmp_path_factory):
    """One assembled output directory shared by the whole session."""
    return assemble(tmp_path_factory.mktemp("keras_out"))


@pytest.fixture(scope="session")
def load(outdir):
    """Import a runtime module from the assembled directory under a private name (its
    siblings importable by their bare names, as beside a generated model.py)."""

    @functools.cache
    def _load(name):
        spec = importlib.util.spec_from_file_location(f"keras_rt_{name}", outdir / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, str(outdir))
        try:
            spec.loader.exec_module(module)
        finally:
            sys.path.remove(str(outdir))
        return module

    return _load


@pytest.fixture
def run_train(outdir):
    """Run the assembled train.py in a subprocess; returns the CompletedProcess."""

    def _run(*args, timeout=240):
        cmd = [sys.executable, str(outdir / "train.py"), *map(str, args)]
        return subprocess.run(cmd, cwd=outdir, capture_output=True, text=True, timeout=timeout)

    return _run
