"""PyTorch tower tests: the pocket AlexNets of tests/towers_common, compiled once per session."""

import functools
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

TESTS = Path(__file__).resolve().parents[1]
for folder in ("towers_common", "torch_backend"):  # towers_reference; ptgen
    if str(TESTS / folder) not in sys.path:
        sys.path.insert(0, str(TESTS / folder))

from ptgen import check_file, compile_to, import_model  # noqa: E402
from towers_reference import spec_file  # noqa: E402


@pytest.fixture(scope="session")
def mini(tmp_path_factory):
    """mini(name) -> namespace(checked, dir, module) of tests/towers_common/specs/NAME.arch."""

    @functools.cache
    def _compile(name):
        checked = check_file(spec_file(name))
        directory = compile_to(checked, tmp_path_factory.mktemp(name))
        return SimpleNamespace(checked=checked, dir=directory, module=import_model(directory))

    return _compile
