"""`archdsl import` of Swin's ops: the pocket Swin's export (window_attention regular and
shifted on a padded map, space_to_depth, layer norms over channels whose transposes torch's
exporter cancels) computes onnxruntime's outputs with the model's own tensors (the relative
position bias table recovered from the gathered bias the export folded); a window attention
that computes something else is refused in one line, nothing written. Swin-T is in
test_round_trip.py (slow)."""

from pathlib import Path

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from import_helpers import assert_round_trip, exported_spec  # noqa: E402
from onnx import numpy_helper  # noqa: E402
from onnx_helpers import compiled, random_model  # noqa: E402

from archdsl.cli import main  # noqa: E402

POCKET = Path(__file__).resolve().parents[1] / "swin_common" / "pocket_swin.arch"


def test_the_pocket_swin_round_trips_with_its_own_tensors(tmp_path):
    torch.manual_seed(0)  # build_model draws the weights: the same draws twice
    imported = assert_round_trip(exported_spec(POCKET, tmp_path))
    text = imported.text
    assert "= layernorm |> window_attention(2, window=4)  expect 32 x 9 x 9\n" in text
    assert "= layernorm |> window_attention(2, window=4, shift=2)  expect 32 x 9 x 9\n" in text
    assert "= layernorm |> window_attention(4, window=4, shift=2)  expect 64 x 5 x 5\n" in text
    assert "|> space_to_depth |> layernorm  expect 128 x 5 x 5\n" in text
    torch.manual_seed(0)
    state = random_model(compiled(POCKET)[1]).state_dict()  # the exported model's tensors
    for leaf in ("relative_position_bias_table", "qkv.weight", "qkv.bias", "proj.weight"):
        want = [t.numpy() for k, t in state.items() if k.endswith(f"window_attention.{leaf}")]
        got = [a for k, a in imported.arrays.items() if k.endswith(f".{leaf}")]
        assert len(got) == len(want) == 4
        for mine, theirs in zip(got, want, strict=True):
            np.testing.assert_array_equal(mine, theirs)


def _changed(path, node_name, index, value):
    """The ONNX file with input `index` of the node `node_name` replaced by the constant
    `value` (float32)."""
    model = onnx.load(str(path))
    (node,) = [n for n in model.graph.node if n.name == node_name]
    model.graph.initializer.append(numpy_helper.from_array(np.float32(value), "changed"))
    node.input[index] = "changed"
    onnx.save(model, str(path))


@pytest.mark.parametrize(
    "change",
    [
        ("/stage1/shifted/attn/window_attention/Mul", 1, 0.3),  # the queries scaled otherwise
        ("/stage1/shifted/attn/window_attention/Add_1", 1, np.zeros((1, 9, 1, 16, 16))),
    ],
    ids=["scale", "no-mask"],
)
def test_a_window_attention_that_computes_something_else_is_refused(change, tmp_path, capsys):
    path = exported_spec(POCKET, tmp_path)
    _changed(path, *change)
    code = main(["import", str(path), "-o", str(tmp_path / "m.arch")])
    err = capsys.readouterr().err
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    # the subgraph reads the layer norm's output in NHWC: the transpose back is refused
    said = "node 143 '/stage1/shifted/attn/layernorm/LayerNormalization/to_nhwc' (Transpose)"
    assert said + ": the language has no op that computes it" in err
    assert not (tmp_path / "m.arch").exists() and not (tmp_path / "m.npz").exists()
