"""The PyTorch emission of the sequence ops: embedding, lstm and gru, and the padding mask.

Their helper classes are written into model.py: SequenceLSTM / SequenceGRU are nn.LSTM /
nn.GRU (so their state_dict keys are PyTorch's) that return the output sequence or the last
state and skip padding through packed sequences; MaskedSequential hands a statement's mask to
the layers that take one.
"""

from __future__ import annotations

from archdsl.backends.pysource import Call, Pair, num
from archdsl.backends.torch.layout import statement

from archdsl.ops.sequence import Embedding, Recurrent

RECURRENT_CLASSES = '''class Recurrent:
    """nn.LSTM / nn.GRU, batch first, returning the whole output sequence or the last state
    of the top layer (forward and backward directions concatenated). Given a mask (True at
    real tokens, which come first), each sequence runs over its real tokens only: the
    outputs at padding are zeros and a sequence without any token gives zeros."""

    takes_mask = True

    def __init__(self, *args, sequences, **kwargs):
        """nn.LSTM / nn.GRU's arguments; sequences: return every position's output."""
        super().__init__(*args, batch_first=True, **kwargs)
        self.sequences = sequences

    def forward(self, x, mask=None):
        """(N, L, D) -> (N, L, units * directions) or (N, units * directions)."""
        lengths = None if mask is None else mask.sum(1)
        if lengths is not None:
            x = nn.utils.rnn.pack_padded_sequence(
                x, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False
            )
        out, state = super().forward(x)
        if self.sequences:
            if lengths is not None:
                total = mask.shape[1]
                out = nn.utils.rnn.pad_packed_sequence(
                    out, batch_first=True, total_length=total
                )[0]
            result = out
        else:
            last = state[0] if isinstance(state, tuple) else state
            result = torch.cat(list(last[-(2 if self.bidirectional else 1) :]), dim=1)
        if lengths is None:
            return result
        present = (lengths > 0).to(result.dtype)
        return result * present.view(-1, *[1] * (result.dim() - 1))


class SequenceLSTM(Recurrent, nn.LSTM):
    """nn.LSTM (gates i, f, g, o) returning the sequence or the last state."""


class SequenceGRU(Recurrent, nn.GRU):
    """nn.GRU (gates r, z, n) returning the sequence or the last state."""
'''

MASKED_SEQUENTIAL_CLASS = '''class MaskedSequential(nn.Sequential):
    """nn.Sequential whose layers that skip padding (`takes_mask`) also get the mask."""

    def forward(self, x, mask):
        """Each layer in turn; the mask (True at real tokens) to those that take it."""
        for layer in self:
            x = layer(x, mask) if getattr(layer, "takes_mask", False) else layer(x)
        return x
'''

REAL_TOKENS_FUNCTION = '''def real_tokens(ids, padding):
    """True at every position up to each text's last id other than `padding`: the
    padding is the run of padding ids that ends a text."""
    positions = torch.arange(ids.shape[1], device=ids.device)
    ends = torch.where(ids != padding, positions + 1, 0).amax(dim=1, keepdim=True)
    return positions < ends
'''

HELPER_NAMES = ("Recurrent", "SequenceLSTM", "SequenceGRU", "MaskedSequential", "real_tokens")


def embedding(op: Embedding, layer, fresh: bool) -> Call:
    """nn.Embedding(vocab, dim[, padding_idx])."""
    padding = () if op.padding is None else (Pair("padding_idx", num(op.padding)),)
    return Call("nn.Embedding", (num(op.vocab), num(op.dim), *padding))


def recurrent(op: Recurrent, layer, fresh: bool) -> Call:
    """SequenceLSTM / SequenceGRU with the options that differ from nn.LSTM's defaults."""
    options = [Pair("num_layers", num(op.layers))] if op.layers != 1 else []
    if op.bidirectional:
        options.append(Pair("bidirectional", "True"))
    if not op.bias:
        options.append(Pair("bias", "False"))
    options.append(Pair("sequences", repr(op.sequences)))
    cls = "SequenceLSTM" if op.op == "lstm" else "SequenceGRU"
    return Call(cls, (num(layer.input_shape[1]), num(op.units), *options))


def helpers(used: set[str], masked: bool) -> list[str]:
    """The helper classes model.py needs."""
    texts = [RECURRENT_CLASSES] if used & {"SequenceLSTM", "SequenceGRU"} else []
    masking = [MASKED_SEQUENTIAL_CLASS, REAL_TOKENS_FUNCTION] if masked else []
    return [t.rstrip("\n") for t in texts + masking]


def init_lines(op, path: str, indent: int) -> list[str]:
    """reset_parameters' lines for an embedding (N(0, 1), the padding row zero, as torch's)
    or a recurrent layer (every tensor U(-1/sqrt(units), +1/sqrt(units)), as torch's)."""
    pad = " " * indent
    if op.op == "embedding":
        normal = Call(
            "nn.init.normal_", (f"{path}.weight", Pair("mean", "0.0"), Pair("std", "1.0"))
        )
        lines = [statement(normal, indent)]
        if op.padding is not None:
            lines.append(f"{pad}nn.init.zeros_({path}.weight[{op.padding}])")
        return lines
    bound = num(op.units**-0.5)
    return [
        f"{pad}for tensor in {path}.parameters():",
        statement(
            Call("nn.init.uniform_", ("tensor", Pair("a", f"-{bound}"), Pair("b", bound))),
            indent + 4,
        ),
    ]
