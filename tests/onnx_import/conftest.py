"""ONNX import tests: they need onnx and onnxruntime (the dev extra); they share the export
tests' helpers (tests/torch_export/onnx_helpers.py) and the ones beside them."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "torch_export"))
