"""The zoo against torchvision: the compile/import helpers of tests/torch_backend (ptgen)."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# ptgen lives beside the torch backend tests; make it importable when this folder runs alone
sys.path.insert(0, str(HERE.parent / "torch_backend"))
