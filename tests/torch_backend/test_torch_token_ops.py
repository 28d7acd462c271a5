"""Issue 13's token ops and self-attention in PyTorch against NumPy (tests/op_reference) and
torch's own modules: to_tokens / to_map, token, mean_tokens, class_token, position_embedding,
dense and layernorm over tokens, attention (scaled_dot_product_attention against the explicit
softmax(Q K^T / sqrt(d)) V, and nn.MultiheadAttention with the same state_dict). ViT itself is
specs/zoo/vit_b_16.arch, compared with torchvision by tests/torch_zoo."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "op_reference"))
from convnet_ops import layernorm  # noqa: E402
from token_ops import attention, class_token, to_map, to_tokens  # noqa: E402

torch = pytest.importorskip("torch")


def spec(input_shape, body):
    """A one-input spec around statement lines."""
    return f"model T\ninput image: {input_shape}\n{body}\n"


def run(module, x):
    """A module (or model) in eval mode on a float64 NumPy batch, in float32, as float64."""
    module.eval()
    with torch.no_grad():
        y = module(torch.as_tensor(x, dtype=torch.float32))
    return y.numpy().astype(np.float64)


def randomise(model, seed=1):
    """Every parameter drawn at random, so that each tensor shows in the outputs."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=generator))


def values(tensor):
    return tensor.detach().numpy().astype(np.float64)


def batch(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32).astype(np.float64)


def test_to_tokens_is_torchvisions_patch_order_and_to_map_its_inverse(compiled):
    model = compiled(spec("5 x 2 x 3", "t = to_tokens\nm = to_map(2, 3)")).module.build_model()
    x = batch(2, 5, 2, 3)
    tokens = run(model.t, x)
    np.testing.assert_array_equal(tokens, to_tokens(x))
    vit_order = torch.as_tensor(x).reshape(2, 5, 6).permute(0, 2, 1)  # VisionTransformer's
    np.testing.assert_array_equal(tokens, vit_order.numpy())
    np.testing.assert_array_equal(run(model, x), to_map(tokens, 2, 3))
    np.testing.assert_array_equal(run(model, x), x)


def test_token_and_mean_tokens_give_vectors(compiled):
    body = (
        "t = to_tokens\nfirst = token(4) from t\nmean = mean_tokens from t\nout = add(first, mean)"
    )
    model = compiled(spec("3 x 2 x 3", body)).module.build_model()
    x = batch(2, 3, 2, 3)
    tokens = to_tokens(x)
    np.testing.assert_array_equal(run(model.first, tokens), tokens[:, 4])
    np.testing.assert_allclose(run(model.mean, tokens), tokens.mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(run(model, x), tokens[:, 4] + tokens.mean(axis=1), rtol=1e-6)


def test_class_token_and_position_embedding_start_as_torchvisions(compiled):
    body = "t = to_tokens |> class_token |> position_embedding(std=0.05)"
    model = compiled(spec("32 x 8 x 8", body)).module.build_model()
    token, embedding = model.t.class_token.token, model.t.position_embedding.embedding
    assert token.shape == (1, 1, 32) and torch.all(token == 0)
    assert embedding.shape == (1, 65, 32)
    assert abs(embedding.std().item() - 0.05) < 0.005 and abs(embedding.mean().item()) < 0.005
    randomise(model)
    x = batch(2, 32, 8, 8)
    expected = class_token(to_tokens(x), values(token)) + values(embedding)
    np.testing.assert_allclose(run(model, x), expected, rtol=1e-6, atol=1e-6)


def test_dense_and_layernorm_act_on_each_tokens_features(compiled):
    body = "t = to_tokens |> layernorm(eps=0.01) |> dense(5)"
    model = compiled(spec("6 x 2 x 2", body)).module.build_model()
    randomise(model)
    x = batch(3, 6, 2, 2)
    norm, dense = model.t.layernorm, model.t.dense
    normed = layernorm(to_tokens(x), values(norm.weight), values(norm.bias), 0.01, axis=-1)
    expected = normed @ values(dense.weight).T + values(dense.bias)
    np.testing.assert_allclose(run(model, x), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("bias", ["true", "false"])
def test_attention_is_the_explicit_softmax_form(compiled, bias):
    """scaled_dot_product_attention gives softmax(Q K^T / sqrt(d)) V head by head (NumPy)."""
    body = f"t = to_tokens |> attention(2, bias={bias})"
    model = compiled(spec("8 x 2 x 3", body)).module.build_model()
    randomise(model)
    layer = model.t.attention
    assert [n for n, _ in layer.named_parameters()] == (
        ["in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"]
        if bias == "true"
        else ["in_proj_weight", "out_proj.weight"]
    )
    x = batch(2, 8, 2, 3)
    zeros = np.zeros(24), np.zeros(8)
    in_bias, out_bias = (
        (values(layer.in_proj_bias), values(layer.out_proj.bias)) if bias == "true" else zeros
    )
    expected = attention(
        to_tokens(x),
        2,
        values(layer.in_proj_weight),
        in_bias,
        values(layer.out_proj.weight),
        out_bias,
    )
    np.testing.assert_allclose(run(model, x), expected, rtol=1e-5, atol=1e-5)


def test_attention_is_torchs_multihead_attention_with_its_state_dict(compiled):
    model = compiled(spec("12 x 3 x 3", "t = to_tokens |> attention(3)")).module.build_model()
    randomise(model)
    reference = torch.nn.MultiheadAttention(12, 3, batch_first=True).eval()
    reference.load_state_dict(model.t.attention.state_dict())
    tokens = torch.randn(4, 9, 12)
    with torch.no_grad():
        expected, _ = reference(tokens, tokens, tokens, need_weights=False)
        torch.testing.assert_close(model.t.attention.eval()(tokens), expected)


def test_attention_starts_as_multihead_attention_does(compiled):
    """in_proj xavier-uniform over (3D, D), out_proj nn.Linear's U(+-1/sqrt(D)), biases 0."""
    model = compiled(spec("64 x 4 x 4", "t = to_tokens |> attention(4)")).module.build_model()
    layer = model.t.attention
    glorot = (6 / (64 + 192)) ** 0.5
    assert layer.in_proj_weight.abs().max() <= glorot < 1.05 * layer.in_proj_weight.abs().max()
    assert layer.out_proj.weight.abs().max() <= 1 / 8 < 1.05 * layer.out_proj.weight.abs().max()
    assert torch.all(layer.in_proj_bias == 0) and torch.all(layer.out_proj.bias == 0)


def test_attention_dropout_acts_on_the_weights_in_training_only(compiled):
    body = "t = to_tokens |> attention(2, dropout=0.5)"
    model = compiled(spec("8 x 3 x 3", body)).module.build_model()
    x = torch.randn(2, 8, 3, 3)
    without = compiled(spec("8 x 3 x 3", "t = to_tokens |> attention(2)")).module.build_model()
    without.load_state_dict(model.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), without.eval()(x))
        torch.manual_seed(0)
        assert not torch.allclose(model.train()(x), without(x))
