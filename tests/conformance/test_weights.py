"""The portable weight file: strict loading in both backends, and `archdsl weights SPEC FILE`.

The PyTorch checks run here (this session may import torch); the Keras ones come from the
Keras driver's `strict` task (see conftest.py).
"""

import subprocess
import sys

import conform
import numpy as np
import pytest

torch = pytest.importorskip("torch")

MINI = conform.ROOT / "specs" / "mini_alexnet.arch"


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    """mini_alexnet's generated PyTorch model.py, imported."""
    directory = tmp_path_factory.mktemp("weights") / "torch"
    return conform.import_model(conform.compile_spec(MINI, "torch", directory))


def test_torch_round_trip(mini, tmp_path):
    torch.manual_seed(1)
    model = mini.build_model()
    mini.save_weights(model, tmp_path / "w.npz")
    with np.load(tmp_path / "w.npz") as data:
        saved = dict(data)
    assert "num_batches_tracked" not in " ".join(saved)
    assert list(saved) == [k for k in model.state_dict() if "num_batches" not in k]
    assert all(a.dtype == np.float32 for a in saved.values())
    torch.manual_seed(2)
    other = mini.build_model()
    assert not torch.equal(other.conv1.conv.weight, model.conv1.conv.weight)
    mini.load_weights(other, tmp_path / "w.npz")
    for (name, a), b in zip(model.state_dict().items(), other.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def broken(tmp_path, arrays, case):
    path = tmp_path / f"{case}.npz"
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    "case, edit, named",
    [
        ("missing", lambda w: w.pop("fc8.dense.bias"), ["missing fc8.dense.bias"]),
        (
            "extra",
            lambda w: w.update({"fc9.dense.weight": np.zeros((2, 2), np.float32)}),
            ["extra (not in the model) fc9.dense.weight"],
        ),
        (
            "misshaped",
            lambda w: w.update({"fc6.dense.weight": w["fc6.dense.weight"].T}),
            ["fc6.dense.weight is 576 x 256 where the model needs 256 x 576"],
        ),
    ],
)
def test_torch_load_is_strict(mini, tmp_path, case, edit, named):
    model = mini.build_model()
    arrays = {k: v.numpy() for k, v in model.state_dict().items() if "num_batches" not in k}
    edit(arrays)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError) as info:
        mini.load_weights(model, broken(tmp_path, arrays, case))
    for text in named:
        assert text in str(info.value)
    assert type(info.value).__name__ == "WeightsError"
    for name, value in model.state_dict().items():  # nothing was loaded
        assert torch.equal(value, before[name]), name


def test_keras_load_is_strict(inference):
    messages = inference["strict"].check().keras["messages"]
    assert "missing fc8.dense.bias" in messages["missing"]
    assert "extra (not in the model) fc9.dense.weight" in messages["extra"]
    assert "fc6.dense.weight is 576 x 256 where the model needs 256 x 576" in messages["misshaped"]
    # a Keras-layout kernel (kh, kw, in, out) in the file is refused, not silently transposed
    assert (
        "conv1.conv.weight is 11 x 11 x 3 x 24 where the model needs 24 x 3 x 11 x 11"
        in (messages["conv_layout"])
    )


def archdsl_weights(*args):
    return subprocess.run(
        [sys.executable, "-m", "archdsl", "weights", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=conform.ROOT,
    )


@pytest.mark.parametrize(
    "spec",
    [
        "alexnet.arch",
        "alexnet_two_tower.arch",
        "zoo/resnet18.arch",
        pytest.param("zoo/vgg16_bn.arch", marks=pytest.mark.slow),
    ],
)
@pytest.mark.parametrize("written_by", ["weights.npz", "keras_weights.npz"])
def test_archdsl_weights_accepts_both_backends_files(inference, spec, written_by):
    run = inference[spec].check()
    done = archdsl_weights(conform.ROOT / "specs" / spec, run.dir / written_by)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "matches" in done.stdout and "does not match" not in done.stdout


def test_archdsl_weights_names_what_does_not_fit(inference, tmp_path):
    run = inference["mini_alexnet.arch"].check()
    arrays = run.npz("keras_weights.npz")
    arrays.pop("conv2.conv.bias")
    arrays["fc6.dense.weight"] = arrays["fc6.dense.weight"][:, :10]
    arrays["extra.dense.weight"] = np.zeros(3, np.float32)
    done = archdsl_weights(MINI, broken(tmp_path, arrays, "bad"))
    assert done.returncode == 1
    assert "missing   conv2.conv.bias (expected 64)" in done.stdout
    assert "mismatch  fc6.dense.weight: expected 256 x 576, found 256 x 10" in done.stdout
    assert "extra     extra.dense.weight (3)" in done.stdout
