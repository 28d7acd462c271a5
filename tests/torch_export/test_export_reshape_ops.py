"""The ONNX export of `reshape` and `permute` in every layout (tests/op_reference's spec: maps
permuted and made from tokens, a -1) runs in onnxruntime as NumPy's index loops compute it,
with a symbolic batch (every_op.arch exports them on tokens only)."""

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import torch  # noqa: E402
from onnx_helpers import compiled, run_onnx  # noqa: E402

from archdsl.onnx_export import DEFAULT_OPSET, to_onnx  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "op_reference"))
from reshape_ops import SPEC, spec_layers  # noqa: E402


def test_onnxruntime_computes_numpys_reshapes_and_permutes(tmp_path):
    spec = tmp_path / "reshapes.arch"
    spec.write_text(SPEC)
    _, module = compiled(spec)
    exported = to_onnx(
        module.build_model(), False, module.INPUT_SHAPE, DEFAULT_OPSET, dynamic_batch=True
    )
    x = np.random.default_rng(0).normal(size=(3, 4, 2, 3)).astype(np.float32)
    got = run_onnx(exported, torch.as_tensor(x))
    np.testing.assert_array_equal(got, spec_layers(x)["out"])
