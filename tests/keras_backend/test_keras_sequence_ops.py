"""Issue 13's sequence ops in Keras against NumPy (tests/op_reference/sequence_ops.py): token
inputs, embedding with padding, LSTM and GRU (layers, directions, sequences or the last state)
with padding skipped, through the portable weights (PyTorch's names, layouts and gate order)."""

import sys
from pathlib import Path

import numpy as np
import pytest

from archdsl.weights import expected_tensors

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

keras = pytest.importorskip("keras")


def drawn_arrays(out, model):
    """Random portable arrays for every tensor the spec declares, loaded into the model."""
    rng = np.random.default_rng(3)
    shapes = expected_tensors(out.checked.report)
    arrays = {name: rng.normal(0.0, 0.5, shape) for name, shape in shapes.items()}
    weights = sys.modules["weights"]
    weights.load_arrays(model, arrays)
    return arrays


@pytest.mark.parametrize(("kind", "call", "padding"), CASES)
def test_recurrent_matches_numpy(compiled, kind, call, padding):
    """Padded sequences of lengths 7, 3, 1 and 0 (all padding) skip their padding; a
    padding id before a text's last real token counts as a token."""
    out = compiled(spec(call, padding))
    model = out.module.build_model()
    arrays = drawn_arrays(out, model)
    ids = padded_ids(np.random.default_rng(0), 4, 7, 30, [7, 3, 1, 0])
    ids[0, 2] = ids[1, 1] = 0
    got = np.asarray(model(ids.astype("int32"), training=False), dtype="float64")
    op = out.checked.graph.statements[1].ops[0]
    mask = real_tokens(ids) if padding is not None else None
    x = embedding(ids, arrays["emb.embedding.weight"])
    options = dict(layers=op.layers, bidirectional=op.bidirectional, sequences=op.sequences)
    want = recurrent(kind, x, arrays, f"rnn.{kind}", **options, mask=mask)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_portable_round_trip_and_counts(compiled):
    """Saved arrays are the loaded ones (the GRU's two bias rows and gate order included) and
    Keras's parameter count is the spec's."""
    body = "emb = embedding(30, 6, padding=0)\na = lstm(5, layers=2, bidirectional=true, "
    body += "sequences=true)\nb = gru(4)"
    out = compiled(f"model T\ninput text: tokens 7 of 30\n{body}\n")
    model = out.module.build_model()
    arrays = drawn_arrays(out, model)
    saved = sys.modules["weights"].state_arrays(model)
    assert sorted(saved) == sorted(arrays)
    for name, value in arrays.items():
        np.testing.assert_allclose(saved[name], value, rtol=1e-6, err_msg=name)
    assert model.count_params() == out.checked.report.trainable_params


def test_padding_row_starts_at_zero_and_is_not_trained(compiled):
    """The padding id's row is zero and gets no gradient, as torch.nn.Embedding(padding_idx)."""
    import tensorflow as tf

    model = compiled(spec("lstm(4)")).module.build_model()
    table = model.get_layer("emb.embedding").embeddings
    assert np.all(np.asarray(table)[0] == 0) and np.asarray(table)[1:].std() > 0.5
    ids = padded_ids(np.random.default_rng(1), 3, 7, 30, [7, 2, 5]).astype("int32")
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(model(ids, training=True))
    grad = tf.convert_to_tensor(tape.gradient(loss, table))
    assert np.all(np.asarray(grad)[0] == 0) and np.abs(np.asarray(grad)[1:]).sum() > 0


def test_attention_and_mean_skip_padding(compiled):
    """After embedding(padding=0), no token attends to padding and mean_tokens averages the
    real tokens only (texts of 6, 2 and 0 real tokens)."""
    source = "model T\ninput text: tokens 6 of 20\ne = embedding(20, 8, padding=0)\n"
    out = compiled(source + "a = attention(2)\nm = mean_tokens\n")
    model = out.module.build_model()
    arrays = drawn_arrays(out, model)
    ids = padded_ids(np.random.default_rng(2), 3, 6, 20, [6, 2, 0])
    got = np.asarray(model(ids.astype("int32"), training=False), dtype="float64")
    mask = real_tokens(ids)
    x = embedding(ids, arrays["e.embedding.weight"])
    want = masked_mean(masked_attention(x, 2, arrays, "a.attention", mask), mask)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
