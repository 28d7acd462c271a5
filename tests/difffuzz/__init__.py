"""A differential fuzzer: random specs through the front end, an independent shape tracker,
PyTorch and Keras (issue 19).

generator.py writes random valid specs (and mutations the tracker calls invalid) as spec.py
trees; tracker.py predicts every layer's shape and parameters (or the diagnostic) from the
frameworks' documented rules and the README; harness.py compares the tracker with `archdsl
shapes`, then runs the compiled models in a PyTorch and a Keras driver process (drivers.py,
torch_side.py, keras_side.py) and compares them; shrink.py reduces a failing spec to a minimal
one. `python -m tests.difffuzz --seed N --count M` runs it by hand.

The conformance helpers (tests/conformance: conform.py and its drivers) are imported, not
copied: their folder goes on sys.path here, as conform.run_driver puts it on PYTHONPATH.
"""

import sys
from pathlib import Path

CONFORMANCE = Path(__file__).resolve().parents[1] / "conformance"
if str(CONFORMANCE) not in sys.path:
    sys.path.insert(0, str(CONFORMANCE))
