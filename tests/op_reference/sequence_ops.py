"""NumPy references of the sequence ops (issue 13), written from PyTorch's documented equations
and shared by the PyTorch and Keras tests. Weights are the portable file's (PyTorch's
layout and names); a mask (True at real tokens, which come first) limits each sequence to
its real tokens: outputs at padding are zeros and a sequence without any token gives zeros."""

import numpy as np

# (kind, the op as written, the embedding's padding id or None): the cases both backends run
CASES = [
    ("lstm", "lstm(5)", "0"),
    ("lstm", "lstm(5, layers=2, bidirectional=true, sequences=true)", "0"),
    ("lstm", "lstm(4, bidirectional=true)", None),
    ("gru", "gru(5, layers=2)", None),
    ("gru", "gru(4, layers=2, bidirectional=true, sequences=true, bias=false)", "0"),
    ("gru", "gru(4, bidirectional=true)", "0"),
]


def spec(call, padding="0"):
    """Embedding then one recurrent op, on 7 tokens of a 30-id vocabulary."""
    pad = f", padding={padding}" if padding is not None else ""
    return f"model T\ninput text: tokens 7 of 30\nemb = embedding(30, 6{pad})\nrnn = {call}\n"


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def lstm_cell(x, h, c, w_ih, w_hh, b_ih, b_hh):
    """One LSTM step: gates i, f, g, o of W x + b_ih + U h + b_hh."""
    i, f, g, o = np.split(w_ih @ x + b_ih + w_hh @ h + b_hh, 4)
    c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
    return sigmoid(o) * np.tanh(c), c


def gru_cell(x, h, c, w_ih, w_hh, b_ih, b_hh):
    """One GRU step: r, z, n with the reset gate applied after the recurrent product."""
    xr, xz, xn = np.split(w_ih @ x + b_ih, 3)
    hr, hz, hn = np.split(w_hh @ h + b_hh, 3)
    r, z = sigmoid(xr + hr), sigmoid(xz + hz)
    n = np.tanh(xn + r * hn)
    return (1.0 - z) * n + z * h, c


CELLS = {"lstm": lstm_cell, "gru": gru_cell}


def real_tokens(ids, padding=0):
    """True at every position up to each text's last id other than `padding`."""
    ends = [max((t + 1 for t in range(len(row)) if row[t] != padding), default=0) for row in ids]
    return np.arange(ids.shape[1])[None, :] < np.asarray(ends)[:, None]


def embedding(ids, weight):
    """Row `id` of the table for every id."""
    return weight[ids]


def _direction(kind, seq, lengths, tensors):
    """One direction of one layer over every sequence: (outputs (N, L, H), last states)."""
    w_ih, w_hh, b_ih, b_hh = tensors
    units = w_hh.shape[1]
    out = np.zeros(seq.shape[:2] + (units,))
    last = np.zeros((seq.shape[0], units))
    for n, (steps, length) in enumerate(lengths):
        h, c = np.zeros(units), np.zeros(units)
        for t in steps(length):
            h, c = CELLS[kind](seq[n, t], h, c, w_ih, w_hh, b_ih, b_hh)
            out[n, t] = h
        last[n] = h
    return out, last


def recurrent(kind, x, weights, prefix, layers=1, bidirectional=False, sequences=False, mask=None):
    """PyTorch's nn.LSTM / nn.GRU (batch first) on x (N, L, D): the output sequence or the
    last state of the top layer (directions concatenated), padding skipped."""
    lengths = np.full(x.shape[0], x.shape[1]) if mask is None else mask.sum(1)
    forward = [(lambda k: range(k), k) for k in lengths]
    backward = [(lambda k: reversed(range(k)), k) for k in lengths]
    seq, last = x, None
    for k in range(layers):
        outs, lasts = [], []
        for suffix, order in (("", forward), ("_reverse", backward))[: 1 + bidirectional]:
            names = [f"{prefix}.{w}_l{k}{suffix}" for w in ("weight_ih", "weight_hh")]
            w_ih, w_hh = (weights[n] for n in names)
            zero = np.zeros(w_ih.shape[0])
            b_ih = weights.get(f"{prefix}.bias_ih_l{k}{suffix}", zero)
            b_hh = weights.get(f"{prefix}.bias_hh_l{k}{suffix}", zero)
            out, final = _direction(kind, seq, order, (w_ih, w_hh, b_ih, b_hh))
            outs.append(out)
            lasts.append(final)
        seq, last = np.concatenate(outs, -1), np.concatenate(lasts, -1)
    return seq if sequences else last


def padded_ids(rng, batch, length, vocab, lengths):
    """Token ids 1..vocab-1 for each sequence's first `lengths[n]` positions, 0 after them."""
    ids = rng.integers(1, vocab, size=(batch, length))
    ids[np.arange(length)[None, :] >= np.asarray(lengths)[:, None]] = 0
    return ids


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def masked_attention(x, heads, weights, prefix, mask):
    """Multi-head self-attention (nn.MultiheadAttention's tensors) in which every token
    attends to the real tokens of its text only (to all of them in a text without any)."""
    n, length, dim = x.shape
    d = dim // heads
    w_in, b_in = weights[f"{prefix}.in_proj_weight"], weights[f"{prefix}.in_proj_bias"]
    q, k, v = (
        x @ w_in[i * dim : (i + 1) * dim].T + b_in[i * dim : (i + 1) * dim] for i in range(3)
    )
    out = np.zeros_like(x)
    for b in range(n):
        keys = mask[b] if mask[b].any() else np.ones(length, bool)
        for i in range(heads):
            cols = slice(i * d, (i + 1) * d)
            scores = q[b, :, cols] @ k[b, keys, cols].T / np.sqrt(d)
            out[b, :, cols] = softmax(scores) @ v[b, keys, cols]
    return out @ weights[f"{prefix}.out_proj.weight"].T + weights[f"{prefix}.out_proj.bias"]


def masked_mean(x, mask):
    """The mean of each text's real tokens (zeros for a text without any)."""
    counts = np.maximum(mask.sum(1, keepdims=True), 1)
    return (x * mask[..., None]).sum(1) / counts
