"""`archdsl export SPEC --onnx FILE`: weights, batch sizes, opsets, and every refusal."""

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx_helpers import assert_close, compiled, random_input, random_model, run_onnx  # noqa: E402

from archdsl.cli import main  # noqa: E402
from archdsl.onnx_export import DEFAULT_OPSET, initial_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
MINI = ROOT / "specs" / "mini_alexnet.arch"


@pytest.fixture(scope="module")
def mini():
    """(checked mini AlexNet, its generated module)."""
    return compiled(MINI)


def export(capsys, *args):
    """Run `archdsl export MINI ...` in this process: (exit code, stdout, stderr)."""
    code = main(["export", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_weights_and_dynamic_batch(tmp_path, capsys, mini):
    _, module = mini
    model = random_model(module, seed=3)
    module.save_weights(model, tmp_path / "w.npz")
    out = tmp_path / "mini.onnx"
    code, said, err = export(
        capsys, MINI, "--onnx", out, "--weights", tmp_path / "w.npz", "--dynamic-batch"
    )
    assert code == 0, err
    assert "input batch x 3 x 67 x 67 -> output batch x 10 (probabilities" in said
    for batch in (1, 3):
        x = random_input(module, batch, seed=batch)
        assert_close(run_onnx(out, x), module.predict(model, x).numpy())


@pytest.mark.parametrize("opset", [None, 11])
def test_opset_and_static_batch(tmp_path, capsys, mini, opset):
    _, module = mini
    out = tmp_path / "mini.onnx"
    flags = [] if opset is None else ["--opset", opset]
    code, said, err = export(capsys, MINI, "--onnx", out, *flags)
    assert code == 0, err
    proto = onnx.load(str(out))
    (version,) = [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")]
    assert version == (opset or DEFAULT_OPSET) and f"(opset {version})" in said
    dims = [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, 67, 67]
    x = random_input(module, 1)
    # no --weights: the seeded initialisation initial_model also draws
    assert_close(run_onnx(out, x), module.predict(initial_model(module, None), x).numpy())


def test_bad_spec_is_a_located_error(tmp_path, capsys):
    spec = tmp_path / "bad.arch"
    spec.write_text("model X\ninput i: 3 x 8 x 8\nc = conv(4, kernel=3) |> nosuch\n")
    code, _, err = export(capsys, spec, "--onnx", tmp_path / "x.onnx")
    assert code == 1 and "bad.arch:3:26: error[E002]" in err
    assert not (tmp_path / "x.onnx").exists()


def test_missing_weights_file(tmp_path, capsys):
    code, _, err = export(capsys, MINI, "--onnx", tmp_path / "x.onnx", "--weights", "none.npz")
    assert code == 2 and err.strip() == "error[usage]: none.npz: no such file"
    assert not (tmp_path / "x.onnx").exists()


def test_weights_of_the_wrong_shapes(tmp_path, capsys, mini):
    _, module = mini
    arrays = {n: t.numpy() for n, t in module.build_model().state_dict().items()}
    arrays = {n: a for n, a in arrays.items() if not n.endswith("num_batches_tracked")}
    arrays["fc8.dense.weight"] = np.zeros((11, 256), np.float32)
    np.savez(tmp_path / "w.npz", **arrays)
    code, _, err = export(
        capsys, MINI, "--onnx", tmp_path / "x.onnx", "--weights", tmp_path / "w.npz"
    )
    assert code == 2 and "fc8.dense.weight is 11 x 256 where the model needs 10 x 256" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "x.onnx").exists()


def test_unwritable_output(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    code, _, err = export(capsys, MINI, "--onnx", tmp_path / "file" / "x.onnx")
    assert code == 2 and "cannot write the model here" in err
    assert len(err.strip().splitlines()) == 1


def test_a_foreign_file_is_kept_unless_forced_and_its_own_is_replaced(tmp_path, capsys):
    out = tmp_path / "model.onnx"
    out.write_text("not ours")
    code, _, err = export(capsys, MINI, "--onnx", out)
    assert code == 2 and "refusing to overwrite" in err and out.read_text() == "not ours"
    assert export(capsys, MINI, "--onnx", out, "--force")[0] == 0
    onnx.checker.check_model(str(out))
    code, _, err = export(capsys, MINI, "--onnx", out, "--opset", "13")
    assert code == 0, err


def test_a_directory_and_an_opset_out_of_range_are_refused(tmp_path, capsys):
    code, _, err = export(capsys, MINI, "--onnx", tmp_path)
    assert code == 2 and "is a directory" in err
    code, _, err = export(capsys, MINI, "--onnx", tmp_path / "x.onnx", "--opset", "30")
    assert code == 2 and "--opset 30: expected 9 to 20" in err


def test_an_op_that_cannot_export_is_named(tmp_path, capsys):
    spec = tmp_path / "up.arch"
    spec.write_text(
        "model Up\ninput i: 3 x 8 x 8\n"
        "c  = conv(4, kernel=3, pad=1) |> relu\n"
        "up = upsample(2, mode=bilinear, align_corners=true) |> conv(2, kernel=1)\n"
    )
    code, _, err = export(capsys, spec, "--onnx", tmp_path / "x.onnx", "--opset", "10")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "cannot export layer up.upsample (Upsample) to ONNX opset 10" in err
    assert "align_corners" in err and not (tmp_path / "x.onnx").exists()


def test_attention_before_opset_14_is_named(tmp_path, capsys):
    """scaled_dot_product_attention exports from opset 14: the attention layer (a module with
    tensors of its own beside its out_proj) is named, not its exportable child."""
    spec = tmp_path / "a.arch"
    spec.write_text("model A\ninput i: 4 x 2 x 2\nt = to_tokens |> attention(2) |> mean_tokens\n")
    code, _, err = export(capsys, spec, "--onnx", tmp_path / "x.onnx", "--opset", "13")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "cannot export layer t.attention (SelfAttention) to ONNX opset 13" in err
    assert "version 14" in err and not (tmp_path / "x.onnx").exists()
