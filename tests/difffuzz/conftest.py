"""The fuzzer's harness for the session: its PyTorch and Keras driver processes start on first
use and end with the session (nothing here imports torch or TensorFlow)."""

import shutil

import pytest

from difffuzz import harness


@pytest.fixture(scope="session")
def fuzz(tmp_path_factory):
    """A Harness whose drivers serve every test of the session."""
    work = tmp_path_factory.mktemp("difffuzz")
    runner = harness.Harness(work)
    yield runner
    runner.close()
    shutil.rmtree(work, ignore_errors=True)
