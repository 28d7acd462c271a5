"""Keep PyTorch and TensorFlow out of one process: they crash together on this platform.

The main session collects everything except the Keras folders; `test_keras_suite.py` runs those
in a pytest subprocess of their own (with ARCHDSL_KERAS_SUITE=1, which flips what is ignored).
To run only the Keras tests: ARCHDSL_KERAS_SUITE=1 python -m pytest tests/keras_backend ...
"""

import os

import pytest
from heavy_specs import is_heavy

KERAS_SUITE = os.environ.get("ARCHDSL_KERAS_SUITE") == "1"

if KERAS_SUITE:
    collect_ignore_glob = ["torch_*", "unit", "core", "test_keras_suite.py"]
else:
    collect_ignore_glob = ["keras_*"]


@pytest.hookimpl(tryfirst=True)  # before -m deselects
def pytest_collection_modifyitems(items):
    """Mark `slow` every test parametrised with a heavy spec (tests/heavy_specs.py)."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec and any(is_heavy(v) for v in callspec.params.values()):
            item.add_marker(pytest.mark.slow)
