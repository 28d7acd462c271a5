"""Fixtures: a PyTorch output directory assembled from the runtime files and a fixture model.py."""

import functools
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = [ROOT / "backends" / "common", ROOT / "backends" / "torch" / "runtime"]
FIXTURE_MODEL = Path(__file__).parent / "fixtures" / "model.py"
FIXTURE_TABLE = Path(__file__).parent / "fixtures" / "shape_table.py"
# One thread per process: on 2 shared cores, OpenMP spin-waits make 2 threads ~10x slower.
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def assemble(dest, model=FIXTURE_MODEL):
    """Copy the runtime modules and a model.py into dest, as the compiler lays them out."""
    dest.mkdir(parents=True, exist_ok=True)
    for folder in RUNTIME:
        for src in folder.glob("*.py"):
            shutil.copy(src, dest / src.name)
    shutil.copy(model, dest / "model.py")
    shutil.copy(FIXTURE_TABLE, dest / "shape_table.py")  # compile's shape table
    return dest


@pytest.fixture(scope="session")
def outdir(tmp_path_factory):
    """One assembled output directory shared by the whole session."""
    return assemble(tmp_path_factory.mktemp("torch_out"))


@pytest.fixture(scope="session")
def load(outdir):
    """Import a runtime module from the assembled directory under a private name."""

    if str(outdir) not in sys.path:  # runtime modules import their siblings by bare name
        sys.path.append(str(outdir))

    @functools.cache
    def _load(name):
        spec = importlib.util.spec_from_file_location(f"torch_rt_{name}", outdir / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # so that its objects pickle
        spec.loader.exec_module(module)
        return module

    return _load


def command(outdir, script, args):
    """The argv of a runtime script with string arguments."""
    return [sys.executable, str(outdir / script), *map(str, args)]


@pytest.fixture(scope="session")
def run_train(outdir):
    """Run the assembled train.py to completion; returns the CompletedProcess."""

    def _run(*args, timeout=240):
        cmd = command(outdir, "train.py", args)
        return run(cmd, outdir, timeout)

    return _run


def run(cmd, cwd, timeout=240):
    """Run a command to completion with the test environment; returns the CompletedProcess."""
    return subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def run_command():
    """run(cmd, cwd, timeout) for commands other than the assembled train.py."""
    return run


@pytest.fixture(scope="session")
def assemble_into():
    """assemble(dest): a private output directory (e.g. for extra scripts next to train.py)."""
    return assemble


@pytest.fixture
def start_train(outdir):
    """Start the assembled train.py in the background; returns the Popen."""

    def _start(*args):
        cmd = command(outdir, "train.py", args)
        pipe = subprocess.PIPE
        return subprocess.Popen(cmd, cwd=outdir, env=ENV, stdout=pipe, stderr=pipe, text=True)

    return _start
