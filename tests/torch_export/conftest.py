"""ONNX export tests: they need onnx and onnxruntime (the dev extra); the helpers beside them."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
