"""Swin's ops in Keras (issue 13) against NumPy (tests/op_reference/window_ops.py):
window_attention (padded, shifted or not) and space_to_depth; its portable tensors and how
they start. Keras against PyTorch on the pocket Swin and Swin-T: tests/keras_zoo."""

import sys
from pathlib import Path

import numpy as np
import pytest

from archdsl.weights import expected_tensors

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "op_reference"))
from window_ops import space_to_depth, window_attention  # noqa: E402

keras = pytest.importorskip("keras")


def spec(input_shape, body):
    """A one-input spec around statement lines."""
    return f"model T\ninput image: {input_shape}\n{body}\n"


def run(model, x):
    """The model in eval mode on a float64 NumPy batch (computed in float32), as float64."""
    return np.asarray(model(x.astype("float32"), training=False), dtype="float64")


@pytest.mark.parametrize(
    "shape, heads, window, shift",
    [
        ("8 x 9 x 9", 2, 4, 2),  # padded to 12 x 12, shifted
        ("6 x 5 x 7", 3, 3, 1),  # padded to 6 x 9, shifted, three heads
        ("4 x 4 x 6", 2, 4, 2),  # a window covers the rows: shifted along the columns only
    ],
)
def test_window_attention_is_the_numpy_reference(compiled, tmp_path, shape, heads, window, shift):
    body = f"a = window_attention({heads}, window={window}, shift={shift})"
    built = compiled(spec(shape, body))
    model = built.module.build_model()
    rng = np.random.default_rng(1)
    arrays = {
        n: 0.5 * rng.normal(size=s) for n, s in expected_tensors(built.checked.report).items()
    }
    np.savez(tmp_path / "w.npz", **arrays)
    built.module.load_weights(model, tmp_path / "w.npz")
    c, h, w = map(int, shape.split(" x "))
    x = np.random.default_rng(0).normal(size=(2, h, w, c))
    tensors = {name.removeprefix("a.window_attention."): a for name, a in arrays.items()}
    expected = window_attention(x, tensors, heads, window, shift)
    np.testing.assert_allclose(run(model, x), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("shape, block", [("3 x 5 x 7", 2), ("2 x 7 x 5", 3)])
def test_space_to_depth_is_the_numpy_reference(compiled, shape, block):
    model = compiled(spec(shape, f"s = space_to_depth({block})")).module.build_model()
    c, h, w = map(int, shape.split(" x "))
    x = np.random.default_rng(1).normal(size=(2, h, w, c))
    np.testing.assert_allclose(run(model, x), space_to_depth(x, block), rtol=0, atol=1e-6)


def test_window_attention_holds_the_portable_tensors_as_torchvision_starts_them(compiled, tmp_path):
    built = compiled(spec("32 x 14 x 14", "a = window_attention(4, window=7, shift=3)"))
    built.module.save_weights(built.module.build_model(), tmp_path / "w.npz")
    state = dict(np.load(tmp_path / "w.npz"))
    assert {n: a.shape for n, a in state.items()} == expected_tensors(built.checked.report)
    assert not state["a.window_attention.qkv.bias"].any()
    assert not state["a.window_attention.proj.bias"].any()
    for name in ("qkv.weight", "relative_position_bias_table"):
        assert 0.017 < state[f"a.window_attention.{name}"].std() < 0.023


def test_a_saved_model_loads_with_its_windows(compiled, tmp_path):
    """Both layers' configs round-trip through a .keras file: the same outputs after loading."""
    body = "a = window_attention(2, window=3, shift=1) |> space_to_depth(2)"
    model = compiled(spec("4 x 7 x 7", body)).module.build_model()
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    x = np.random.default_rng(2).normal(size=(2, 7, 7, 4))
    np.testing.assert_allclose(run(loaded, x), run(model, x), rtol=0, atol=0)
    assert loaded.get_layer("a.window_attention").get_config()["shift"] == 1
