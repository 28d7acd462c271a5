"""Torch backend tests: fixtures compiling spec files (once per session) and inline specs."""

import functools
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from ptgen import check, check_file, compile_to, import_model

# init_reference: the initialiser check both backends run
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "init_common"))
# block_specs: the spec of the blocks-as-code tests both backends run
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "blocks_common"))


@pytest.fixture(scope="session")
def compiled_file(tmp_path_factory):
    """compiled_file(path) -> namespace(checked, dir, module), compiled once per session."""

    @functools.cache
    def _compile(path):
        checked = check_file(path)
        directory = compile_to(checked, tmp_path_factory.mktemp(path.stem))
        return SimpleNamespace(checked=checked, dir=directory, module=import_model(directory))

    return _compile


@pytest.fixture
def compiled(tmp_path):
    """compiled(source) -> namespace(checked, dir, module) of an inline spec."""
    counter = iter(range(1_000_000))

    def _compile(source):
        checked = check(source)
        directory = compile_to(checked, tmp_path / f"out{next(counter)}")
        return SimpleNamespace(checked=checked, dir=directory, module=import_model(directory))

    return _compile
