"""Issue 13's sequence ops in PyTorch against NumPy (tests/op_reference/sequence_ops.py):
token inputs, embedding with padding, LSTM and GRU (layers, directions, sequences or the last
state) with padding skipped; counts against torch.nn."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "op_reference"))
from sequence_ops import (  # noqa: E402
    CASES,
    embedding,
    masked_attention,
    masked_mean,
    padded_ids,
    real_tokens,
    recurrent,
    spec,
)

torch = pytest.importorskip("torch")


def randomised_arrays(model):
    """Every parameter drawn anew (so the biases show), returned as float64 portable arrays."""
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * 0.5)
    return {k: v.double().numpy() for k, v in model.state_dict().items()}


@pytest.mark.parametrize(("kind", "call", "padding"), CASES)
def test_recurrent_matches_numpy(compiled, kind, call, padding):
    """Padded sequences of lengths 7, 3, 1 and 0 (all padding) skip their padding; a
    padding id before a text's last real token counts as a token."""
    model = compiled(spec(call, padding)).module.build_model().eval()
    weights = randomised_arrays(model)
    ids = padded_ids(np.random.default_rng(0), 4, 7, 30, [7, 3, 1, 0])
    ids[0, 2] = ids[1, 1] = 0
    with torch.no_grad():
        got = model(torch.as_tensor(ids)).double().numpy()
    x = embedding(ids, weights["emb.embedding.weight"])
    op = model.rnn[0]
    options = dict(layers=op.num_layers, bidirectional=op.bidirectional, sequences=op.sequences)
    mask = real_tokens(ids) if padding is not None else None
    want = recurrent(
        kind, x, weights, "rnn.lstm" if kind == "lstm" else "rnn.gru", **options, mask=mask
    )
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_counts_match_torch(compiled):
    """Parameters of embedding + a 2-layer bidirectional LSTM and a GRU as torch.nn counts them."""
    body = "emb = embedding(30, 6, padding=0)\na = lstm(5, layers=2, bidirectional=true, sequences=true)\nb = gru(4)"
    out = compiled(f"model T\ninput text: tokens 7 of 30\n{body}\n")
    want = sum(
        p.numel()
        for m in (
            torch.nn.Embedding(30, 6),
            torch.nn.LSTM(6, 5, num_layers=2, bidirectional=True),
            torch.nn.GRU(10, 4),
        )
        for p in m.parameters()
    )
    assert out.checked.report.trainable_params == want
    assert sum(p.numel() for p in out.module.build_model().parameters()) == want


def test_init_as_torch(compiled):
    """N(0, 1) embedding rows with the padding row zero; recurrent tensors within 1/sqrt(units)."""
    torch.manual_seed(0)
    model = compiled(spec("lstm(16)")).module.build_model()
    table = model.emb.embedding.weight.detach()
    assert torch.all(table[0] == 0)
    assert abs(table[1:].std().item() - 1.0) < 0.1
    bound = 16**-0.5
    values = torch.cat([p.detach().flatten() for p in model.rnn.parameters()])
    assert values.abs().max().item() <= bound and values.abs().max().item() > 0.9 * bound


def test_padding_row_is_not_trained(compiled):
    """The padding id's row gets no gradient, as torch.nn.Embedding(padding_idx=0)."""
    model = compiled(spec("lstm(4)")).module.build_model()
    ids = torch.as_tensor(padded_ids(np.random.default_rng(1), 3, 7, 30, [7, 2, 5]))
    model(ids).sum().backward()
    grad = model.emb.embedding.weight.grad
    assert torch.all(grad[0] == 0) and grad[1:].abs().sum() > 0


def test_attention_and_mean_skip_padding(compiled):
    """After embedding(padding=0), no token attends to padding and mean_tokens averages the
    real tokens only (texts of 6, 2 and 0 real tokens)."""
    source = "model T\ninput text: tokens 6 of 20\ne = embedding(20, 8, padding=0)\n"
    model = compiled(source + "a = attention(2)\nm = mean_tokens\n").module.build_model().eval()
    weights = randomised_arrays(model)
    ids = padded_ids(np.random.default_rng(2), 3, 6, 20, [6, 2, 0])
    with torch.no_grad():
        got = model(torch.as_tensor(ids)).double().numpy()
    mask = real_tokens(ids)
    x = embedding(ids, weights["e.embedding.weight"])
    want = masked_mean(masked_attention(x, 2, weights, "a.attention", mask), mask)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
