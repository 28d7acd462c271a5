"""Issue 13's token ops and self-attention in Keras against NumPy (tests/op_reference):
to_tokens / to_map (channels-last maps, the same token order as PyTorch's), token,
mean_tokens, class_token, position_embedding, dense and layernorm over tokens, attention;
their portable tensors."""

import sys
from pathlib import Path

import numpy as np
import pytest

from archdsl.weights import expected_tensors

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "op_reference"))
from convnet_ops import layernorm  # noqa: E402
from token_ops import attention, class_token, to_map, to_tokens  # noqa: E402

keras = pytest.importorskip("keras")


def spec(input_shape, body):
    """A one-input spec around statement lines."""
    return f"model T\ninput image: {input_shape}\n{body}\n"


def run(model, x, training=False):
    """The model on a float64 NumPy batch (computed in float32), as float64."""
    return np.asarray(model(x.astype("float32"), training=training), dtype="float64")


def batch(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32).astype(np.float64)


def channels_last(x):
    return np.transpose(x, (0, 2, 3, 1))


def randomise(model):
    """Every weight drawn at random, so that each tensor shows in the outputs."""
    rng = np.random.default_rng(1)
    for w in model.weights:
        w.assign(0.5 * rng.normal(size=w.shape))


def portable(module, model):
    """The model's tensors by portable name (the runtime's weights.state_arrays)."""
    arrays = module.save_weights.__globals__["state_arrays"](model)
    return {k: v.astype(np.float64) for k, v in arrays.items()}


def test_to_tokens_reads_the_rows_of_the_map_and_to_map_inverts_it(compiled):
    built = compiled(spec("5 x 2 x 3", "t = to_tokens\nm = to_map(2, 3)")).module
    model = built.build_model()
    x = batch(2, 5, 2, 3)
    tokens = run(keras.Model(model.input, model.get_layer("t.to_tokens").output), channels_last(x))
    np.testing.assert_array_equal(tokens, to_tokens(x))
    np.testing.assert_array_equal(run(model, channels_last(x)), channels_last(to_map(tokens, 2, 3)))


def test_token_and_mean_tokens_give_vectors(compiled):
    body = (
        "t = to_tokens\nfirst = token(4) from t\nmean = mean_tokens from t\nout = add(first, mean)"
    )
    model = compiled(spec("3 x 2 x 3", body)).module.build_model()
    x = batch(2, 3, 2, 3)
    tokens = to_tokens(x)
    expected = tokens[:, 4] + tokens.mean(axis=1)
    np.testing.assert_allclose(run(model, channels_last(x)), expected, rtol=1e-6, atol=1e-7)


def test_class_token_and_position_embedding(compiled):
    body = "t = to_tokens |> class_token |> position_embedding(std=0.05)"
    built = compiled(spec("32 x 8 x 8", body)).module
    model = built.build_model()
    start = portable(built, model)
    assert start["t.class_token.token"].shape == (1, 1, 32)
    assert np.all(start["t.class_token.token"] == 0)
    embedding = start["t.position_embedding.embedding"]
    assert embedding.shape == (1, 65, 32) and abs(embedding.std() - 0.05) < 0.005
    randomise(model)
    tensors = portable(built, model)
    x = batch(2, 32, 8, 8)
    expected = (
        class_token(to_tokens(x), tensors["t.class_token.token"])
        + tensors["t.position_embedding.embedding"]
    )
    np.testing.assert_allclose(run(model, channels_last(x)), expected, rtol=1e-6, atol=1e-6)


def test_dense_and_layernorm_act_on_each_tokens_features(compiled):
    body = "t = to_tokens |> layernorm(eps=0.01) |> dense(5)"
    built = compiled(spec("6 x 2 x 2", body)).module
    model = built.build_model()
    randomise(model)
    t = portable(built, model)
    x = batch(3, 6, 2, 2)
    normed = layernorm(to_tokens(x), t["t.layernorm.weight"], t["t.layernorm.bias"], 0.01, -1)
    expected = normed @ t["t.dense.weight"].T + t["t.dense.bias"]
    np.testing.assert_allclose(run(model, channels_last(x)), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("bias", ["true", "false"])
def test_attention_is_the_explicit_softmax_form(compiled, bias):
    body = f"t = to_tokens |> attention(2, bias={bias})"
    built = compiled(spec("8 x 2 x 3", body))
    model = built.module.build_model()
    shapes = {k: v.shape for k, v in portable(built.module, model).items()}
    assert shapes == expected_tensors(built.checked.report)
    randomise(model)
    t = portable(built.module, model)
    zeros = {"t.attention.in_proj_bias": np.zeros(24), "t.attention.out_proj.bias": np.zeros(8)}
    t = {**zeros, **t}
    x = batch(2, 8, 2, 3)
    expected = attention(
        to_tokens(x),
        2,
        t["t.attention.in_proj_weight"],
        t["t.attention.in_proj_bias"],
        t["t.attention.out_proj.weight"],
        t["t.attention.out_proj.bias"],
    )
    np.testing.assert_allclose(run(model, channels_last(x)), expected, rtol=1e-5, atol=1e-5)


def test_attention_starts_as_multihead_attention_does(compiled):
    built = compiled(spec("64 x 4 x 4", "t = to_tokens |> attention(4)")).module
    t = portable(built, built.build_model())
    glorot = (6 / (64 + 192)) ** 0.5
    in_proj, out_proj = t["t.attention.in_proj_weight"], t["t.attention.out_proj.weight"]
    assert np.abs(in_proj).max() <= glorot < 1.05 * np.abs(in_proj).max()
    assert np.abs(out_proj).max() <= 1 / 8 < 1.05 * np.abs(out_proj).max()
    assert not t["t.attention.in_proj_bias"].any() and not t["t.attention.out_proj.bias"].any()


def test_attention_dropout_acts_in_training_only(compiled):
    model = compiled(spec("8 x 3 x 3", "t = to_tokens |> attention(2, dropout=0.5)")).module
    model = model.build_model()
    x = batch(2, 8, 3, 3).transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(run(model, x), run(model, x))
    assert not np.allclose(run(model, x, training=True), run(model, x))
