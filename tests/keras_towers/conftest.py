"""Keras tower tests: the pocket AlexNets of tests/towers_common, compiled once per session."""

import functools
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

TESTS = Path(__file__).resolve().parents[1]
for folder in ("towers_common", "keras_backend"):  # towers_reference; kerasgen
    if str(TESTS / folder) not in sys.path:
        sys.path.insert(0, str(TESTS / folder))

from kerasgen import check, compile_to, import_model  # noqa: E402
from towers_reference import spec_file  # noqa: E402


@pytest.fixture(autouse=True)
def seeded():
    """Every test draws the same weights."""
    import keras

    keras.utils.set_random_seed(0)


@pytest.fixture(scope="session")
def compiled_path(tmp_path_factory):
    """compiled_path(path) -> namespace(checked, dir, module) of a spec file, once per session."""

    @functools.cache
    def _compile(path):
        checked = check(Path(path).read_text(encoding="utf-8"), str(path))
        directory = compile_to(checked, tmp_path_factory.mktemp(Path(path).stem))
        return SimpleNamespace(checked=checked, dir=directory, module=import_model(directory))

    return _compile


@pytest.fixture(scope="session")
def mini(compiled_path):
    """mini(name) -> the compiled tests/towers_common/specs/NAME.arch."""
    return lambda name: compiled_path(spec_file(name))
