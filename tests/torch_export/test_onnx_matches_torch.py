"""onnxruntime runs the ONNX export of every spec as the generated PyTorch model does.

AlexNet, ResNet-18 and MobileNetV2 (and a small net of every op) in the default run, every
other spec in specs/ under `slow`: random weights and batch-norm statistics, a batch of two
through a --dynamic-batch export, outputs equal to 1e-5 of the largest.
"""

from pathlib import Path

import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import torch  # noqa: E402
from onnx_helpers import (  # noqa: E402
    assert_close,
    compiled,
    random_input,
    random_model,
    run_onnx,
)

from archdsl.onnx_export import DEFAULT_OPSET, ExportError, export_model  # noqa: E402
from archdsl.shapes import trailing_softmax  # noqa: E402
from archdsl.signatures import OPS  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted((ROOT / "specs").rglob("*.arch"))
DEFAULT_RUN = {"alexnet.arch", "resnet18.arch", "mobilenet_v2.arch"}
EVERY_OP = Path(__file__).resolve().parent / "every_op.arch"
EVERY_SEQUENCE_OP = EVERY_OP.with_name("every_sequence_op.arch")  # on token ids


def _param(path):
    """A spec as a test parameter: `slow` unless it is one of the default run's three."""
    marks = () if path.name in DEFAULT_RUN else (pytest.mark.slow,)
    return pytest.param(path, marks=marks, id=str(path.relative_to(ROOT / "specs")))


def exported_outputs(path, batch=2):
    """(onnxruntime's outputs, PyTorch's predict outputs) for random weights and inputs."""
    checked, module = compiled(path)
    model = random_model(module)
    x = random_input(module, batch)
    want = module.predict(model, x).numpy()
    exported = export_model(
        module, model, trailing_softmax(checked.graph), DEFAULT_OPSET, dynamic_batch=True
    )
    return run_onnx(exported.proto.SerializeToString(), x), want, model


@pytest.mark.parametrize(
    "path",
    [_param(p) for p in SPECS]
    + [pytest.param(EVERY_OP, id="every_op"), pytest.param(EVERY_SEQUENCE_OP, id="sequence")],
)
def test_onnxruntime_matches_pytorch(path):
    got, want, _ = exported_outputs(path)
    assert_close(got, want)


def test_channel_shuffle_and_lrn_keep_their_own_forward_after_export():
    """The export runs nn.ChannelShuffle as reshapes and the runtime's FusedLRN as
    nn.LocalResponseNorm, and gives the modules back unchanged."""
    _, _, model = exported_outputs(EVERY_OP, batch=1)
    for kind in (torch.nn.ChannelShuffle, torch.nn.LocalResponseNorm):
        patched = [m for m in model.modules() if isinstance(m, kind)]
        assert patched and all("forward" not in vars(m) for m in patched)
    assert any(type(m).__name__ == "FusedLRN" for m in model.modules())


def test_the_every_op_net_has_every_op():
    """A new op fails here until every_op.arch (or every_sequence_op.arch) uses it (and so
    its export is tested)."""
    graphs = [compiled(path)[0].graph for path in (EVERY_OP, EVERY_SEQUENCE_OP)]
    used = {op.op for graph in graphs for stmt in graph.statements for op in stmt.ops}
    assert used == set(OPS)


def test_a_bidirectional_layer_skipping_padding_is_refused_by_name(tmp_path):
    """Its backward direction needs packed sequences, which the exporter cannot trace."""
    spec = tmp_path / "bi.arch"
    body = "e = embedding(20, 4, padding=0)\nr = gru(3, bidirectional=true)\nout = dense(2)\n"
    spec.write_text(f"model Bi\ninput text: tokens 5 of 20\n{body}")
    checked, module = compiled(spec)
    with pytest.raises(ExportError, match="bidirectional gru that skips padding has no export"):
        export_model(module, module.build_model(), False, DEFAULT_OPSET, dynamic_batch=True)
