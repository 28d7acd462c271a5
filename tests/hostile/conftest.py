"""Fixtures of the hostile-input suite: the tiny spec compiled once for each backend.

Nothing here imports torch or TensorFlow: the trainers and the generated models run in
subprocesses (hostile_harness.py). The suite reuses two helpers of other test folders:
tests/unit/cli_harness.py (running the CLI, one-line errors) and the spec mutations of
tests/core/test_front_end_properties.py.
"""

import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
for folder in (TESTS / "unit", TESTS / "core"):
    if str(folder) not in sys.path:
        sys.path.append(str(folder))

from hostile_harness import compile_tiny  # noqa: E402


@pytest.fixture(scope="session")
def builds(tmp_path_factory):
    """{backend: the folder the tiny spec was compiled into}, outside every case's folder."""
    root = tmp_path_factory.mktemp("hostile_builds")
    return {backend: compile_tiny(root / backend, backend) for backend in ("torch", "keras")}
