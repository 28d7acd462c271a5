"""`archdsl import` of the ONNX exports of every spec: the imported spec checks, its shapes are
onnx's, and its compiled PyTorch model with the imported weights computes onnxruntime's outputs.

The pocket AlexNet, ResNet-18 and MobileNetV2 (and the net of every op) in the default run,
AlexNet (61M parameters: 10 s to export alone) and every other spec in specs/ under `slow`.
"""

from pathlib import Path

import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from import_helpers import assert_round_trip, exported_spec  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted((ROOT / "specs").rglob("*.arch"))
DEFAULT_RUN = {"mini_alexnet.arch", "resnet18.arch", "mobilenet_v2.arch"}
EVERY_OP = ROOT / "tests" / "torch_export" / "every_op.arch"


def _param(path):
    """A spec as a test parameter: `slow` unless it is one of the default run's three."""
    marks = () if path.name in DEFAULT_RUN else (pytest.mark.slow,)
    return pytest.param(path, marks=marks, id=str(path.relative_to(ROOT / "specs")))


@pytest.mark.parametrize(
    "path", [_param(p) for p in SPECS] + [pytest.param(EVERY_OP, id="every_op")]
)
def test_import_of_the_export_computes_what_onnxruntime_does(path, tmp_path):
    assert_round_trip(exported_spec(path, tmp_path))
