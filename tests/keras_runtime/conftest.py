"""Fixtures: a Keras output directory assembled from the runtime files and a fixture model.py."""

import functools
import importlib.util
import os
import subprocess
import sys

import pytest
from runtime_layout import assemble

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


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
