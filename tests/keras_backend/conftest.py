"""Keras backend tests: the TensorFlow backend, quiet; a fixture compiling inline specs."""

import os
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from kerasgen import check, compile_to, import_model

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# init_reference: the initialiser check both backends run
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "init_common"))
# block_specs: the spec of the blocks-as-code tests both backends run
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "blocks_common"))


@pytest.fixture(autouse=True)
def seeded():
    """Every test draws the same weights and dropout masks."""
    import keras

    keras.utils.set_random_seed(0)


@pytest.fixture
def compiled(tmp_path):
    """compiled(source) -> namespace(checked, dir, module) of an inline spec."""
    counter = iter(range(1_000_000))

    def _compile(source):
        checked = check(source)
        directory = compile_to(checked, tmp_path / f"out{next(counter)}")
        return SimpleNamespace(checked=checked, dir=directory, module=import_model(directory))

    return _compile
