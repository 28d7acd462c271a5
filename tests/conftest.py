"""Keep PyTorch and TensorFlow out of one process: they crash together on this platform.

The main session collects everything except the Keras folders; `test_keras_suite.py` runs those
in a pytest subprocess of their own (with ARCHDSL_KERAS_SUITE=1, which flips what is ignored).
To run only the Keras tests: ARCHDSL_KERAS_SUITE=1 python -m pytest tests/keras_backend ...
"""

import os

KERAS_SUITE = os.environ.get("ARCHDSL_KERAS_SUITE") == "1"

if KERAS_SUITE:
    collect_ignore_glob = ["torch_*", "unit", "core", "test_keras_suite.py"]
else:
    collect_ignore_glob = ["keras_*"]
