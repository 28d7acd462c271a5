"""Runs the Keras test folders in a separate pytest process (see conftest.py)."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent


# one case per half of the suite, so that `-m slow` runs the Keras slow tests too (a single
# unmarked case was deselected by it, and the Keras slow tests never ran)
@pytest.mark.parametrize("marks", ["not slow", pytest.param("slow", marks=pytest.mark.slow)])
def test_keras_suite(marks):
    """Every Keras test of this half passes, run in a process that never imports torch."""
    if importlib.util.find_spec("keras") is None:  # find, never import: torch may be loaded
        pytest.skip("install the `keras` extra to run the Keras tests")
    folders = sorted(str(p) for p in TESTS.glob("keras_*") if p.is_dir())
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
