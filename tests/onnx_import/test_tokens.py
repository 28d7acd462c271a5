"""`archdsl import` of token sequences: the pocket ViT's export (to_tokens, to_map, class_token,
position_embedding, attention, layernorm and dense on tokens, gelu, token, mean_tokens) and a
small torchvision VisionTransformer as torch.onnx.export writes it (nn.MultiheadAttention's
batch-second graph) compute onnxruntime's outputs; an attention subgraph that computes something
else is refused in one line, nothing written."""

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from import_helpers import (  # noqa: E402
    assert_round_trip,
    exported_module,
    exported_spec,
    initialiser_values,
)
from onnx import numpy_helper  # noqa: E402

from archdsl.cli import main  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
VIT_POCKET = ROOT / "tests" / "conformance" / "specs" / "vit_pocket.arch"


def test_the_pocket_vit_round_trips(tmp_path):
    path = exported_spec(VIT_POCKET, tmp_path)
    imported = assert_round_trip(path)
    text = imported.text
    assert "= conv(16, kernel=4, stride=4) |> to_tokens  expect 16 x 16\n" in text
    assert "= class_token |> position_embedding  expect 17 x 16\n" in text
    assert "= layernorm(eps=1e-06) |> attention(2)  from patches  expect 17 x 16\n" in text
    assert "= to_map(4, 4) |> conv(8, kernel=3, pad=1) |> relu  from grid" in text
    assert "|> token(0)  expect 16\n" in text and "= mean_tokens  from " in text
    # every tensor is an initialiser, value for value (a MatMul's weight is the transpose of
    # nn.Linear's and of nn.MultiheadAttention's in_proj_weight and out_proj.weight)
    stored = {a.tobytes(): a.shape for a in initialiser_values(path)}
    for name, array in imported.arrays.items():
        forms = [array, np.ascontiguousarray(array.T)] if array.ndim == 2 else [array]
        assert any(stored.get(a.tobytes()) == a.shape for a in forms), name
    attention = [n for n in imported.arrays if n.endswith(".in_proj_weight")]
    assert len(attention) == 1 and imported.arrays[attention[0]].shape == (48, 16)


def test_torchvisions_vision_transformer(tmp_path):
    """torch.onnx.export writes nn.MultiheadAttention batch-second (transposes around it, a
    Gemm out-projection) and its GELU as one Gelu node."""
    from torchvision.models.vision_transformer import VisionTransformer

    sizes = {"num_layers": 2, "num_heads": 2, "hidden_dim": 16, "mlp_dim": 32}
    net = VisionTransformer(image_size=32, patch_size=8, num_classes=10, **sizes)
    path = exported_module(net, (3, 32, 32), tmp_path, "vit")
    text = assert_round_trip(path).text
    assert text.count("= layernorm(eps=1e-06) |> attention(2)  expect 17 x 16\n") == 2
    assert "|> to_tokens |> class_token |> position_embedding  expect 17 x 16\n" in text


def test_an_attention_that_computes_something_else_is_refused(tmp_path, capsys):
    """The query scaled by another factor: no attention(heads) computes it, so the subgraph is
    not one, and its first node the language lacks is named."""
    path = exported_spec(VIT_POCKET, tmp_path)
    model = onnx.load(str(path))
    (scaling,) = [n for n in model.graph.node if n.name == "/attn/attention/Mul"]
    model.graph.initializer.append(numpy_helper.from_array(np.float32(0.7), "other_scale"))
    scaling.input[1] = "other_scale"
    onnx.save(model, str(path))
    code = main(["import", str(path), "-o", str(tmp_path / "m.arch")])
    err = capsys.readouterr().err
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    said = "'/attn/attention/Reshape' (Reshape): a reshape of [1, 17, 48] to [1, 17, 3, 2, 8]"
    assert said in err
    assert not (tmp_path / "m.arch").exists() and not (tmp_path / "m.npz").exists()


def test_tokens_seen_again_as_maps_and_attention_without_bias(tmp_path):
    """to_map of a map just read as tokens (the exporter cancels both transposes), of tokens
    an attention computed, and attention(bias=false): its projections have no Add."""
    spec = tmp_path / "maps.arch"
    spec.write_text(
        "model Maps\n\ninput image: 3 x 8 x 8\n\n"
        "a = conv(8, kernel=2, stride=2) |> to_tokens |> to_map(4, 4) |> conv(4, kernel=1)\n"
        "b = to_tokens |> attention(2, bias=false) |> to_map(4, 4) |> flatten\n"
        "c = to_tokens |> dense(8) |> layernorm |> mean_tokens from a\n"
        "d = concat(b, c) |> dense(3)\n"
    )
    imported = assert_round_trip(exported_spec(spec, tmp_path))
    assert "|> to_tokens |> to_map(4, 4)  expect 8 x 4 x 4\n" in imported.text
    assert "= attention(2, bias=false) |> to_map(4, 4) |> flatten  expect 64\n" in imported.text
    assert sorted(n for n in imported.arrays if ".in_proj" in n or ".out_proj" in n) == [
        "b_attention_out_proj.attention.in_proj_weight",
        "b_attention_out_proj.attention.out_proj.weight",
    ]
