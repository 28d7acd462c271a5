"""Runs the Keras test folders in a separate pytest process (see conftest.py)."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent


def test_keras_suite(request):
    """Every Keras test passes, run in a process that never imports torch."""
    if importlib.util.find_spec("keras") is None:  # find, never import: torch may be loaded
        pytest.skip("install the `keras` extra to run the Keras tests")
    folders = sorted(str(p) for p in TESTS.glob("keras_*") if p.is_dir())
    marks = request.config.getoption("markexpr") or "not slow"
    env = {**os.environ, "ARCHDSL_KERAS_SUITE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-m", marks, "-p", "no:cacheprovider", *folders],
        cwd=TESTS.parent,
        env=env,
        capture_output=True,
        text=True,
    )
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    print(f"keras suite: {summary}")
    assert done.returncode == 0, done.stdout[-8000:] + done.stderr[-2000:]
