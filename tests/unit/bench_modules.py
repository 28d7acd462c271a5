"""bench/ scripts imported as modules by the tests, without leaving bench/ on sys.path."""

import importlib
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def import_bench(name):
    """A bench/ script as a module, with bench/ on sys.path only while it imports and its
    modules left out of sys.modules afterwards (bench/gpu_decode.py must not shadow the
    runtime's gpu_decode, nor bench/harness.py the tests' harness modules)."""
    before = set(sys.modules)
    sys.path.insert(0, str(BENCH))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(BENCH))
        for added in set(sys.modules) - before:
            if str(getattr(sys.modules[added], "__file__", "")).startswith(str(BENCH)):
                del sys.modules[added]
