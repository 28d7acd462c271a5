"""Keras 3 layers of the sequence ops: token embeddings and LSTM / GRU stacks that compute
and train exactly as PyTorch's (keras.ops only).

- TokenEmbedding: keras.layers.Embedding as torch.nn.Embedding(padding_idx): the padding
  row starts at zero and gets no gradient.
- TorchLSTMCell: keras.layers.LSTMCell (gates i, f, c, o = PyTorch's i, f, g, o) with
  PyTorch's second bias (b_hh, `recurrent_bias`) beside Keras's one (b_ih): one bias would
  compute the same but train differently (torch steps both of its biases).
- Recurrent: `layers` LSTM or GRU layers (keras.layers.GRUCell with reset_after=True, the
  GRU of PyTorch), one or two directions each; the output sequence or the last state of the
  top layer. Given a mask (real_tokens: True up to the last real token) each sequence
  runs over those positions only; outputs at padding are zeros, as PyTorch's packed
  sequences give.
"""

import keras
from keras import ops


def real_tokens(ids, padding):
    """True at every position up to each text's last id other than `padding`: the
    padding is the run of padding ids that ends a text."""
    positions = ops.arange(ops.shape(ids)[1])
    ends = ops.max(
        ops.where(ops.not_equal(ids, padding), positions + 1, 0), axis=1, keepdims=True
    )
    return ops.less(positions, ends)


def _uniform(bound):
    """U(-bound, bound): PyTorch's initialiser of every recurrent tensor."""
    return keras.initializers.RandomUniform(-bound, bound)


@keras.saving.register_keras_serializable(package="archdsl")
class TokenEmbedding(keras.layers.Embedding):
    """keras.layers.Embedding whose row `padding` (if set) starts at zero and is not
    trained, as torch.nn.Embedding's padding_idx."""

    def __init__(self, input_dim, output_dim, padding=None, **kwargs):
        """input_dim: rows; output_dim: values per row; padding: the padding id or None."""
        super().__init__(input_dim, output_dim, **kwargs)
        self.padding = padding

    def build(self, input_shape=None):
        """The table, its padding row set to zero."""
        super().build(input_shape)
        if self.padding is not None:
            rows = ops.arange(self.input_dim)[:, None] == self.padding
            self.embeddings.assign(ops.where(rows, 0.0, self.embeddings))

    def call(self, inputs):
        """The rows of the ids; no gradient reaches the padding row."""
        out = super().call(inputs)
        if self.padding is None:
            return out
        real = ops.expand_dims(ops.not_equal(inputs, self.padding), -1)
        return ops.where(real, out, ops.stop_gradient(out))

    def get_config(self):
        """Constructor arguments, for saving."""
        return {**super().get_config(), "padding": self.padding}


@keras.saving.register_keras_serializable(package="archdsl")
class TorchLSTMCell(keras.layers.LSTMCell):
    """keras.layers.LSTMCell with PyTorch's two biases: i, f, c, o of
    x @ kernel + bias + h @ recurrent_kernel + recurrent_bias."""

    def build(self, input_shape):
        """Keras's kernel, recurrent kernel and bias, and the recurrent bias."""
        super().build(input_shape)
        self.recurrent_bias = None
        if self.use_bias:
            self.recurrent_bias = self.add_weight(
                shape=(4 * self.units,),
                name="recurrent_bias",
                initializer=self.bias_initializer,
            )

    def call(self, inputs, states, training=False):
        """One step: c = f * c + i * g, h = o * tanh(c)."""
        h, c = states
        z = ops.matmul(inputs, self.kernel) + ops.matmul(h, self.recurrent_kernel)
        if self.use_bias:
            z = z + self.bias + self.recurrent_bias
        i, f, g, o = ops.split(z, 4, axis=-1)
        c = ops.sigmoid(f) * c + ops.sigmoid(i) * ops.tanh(g)
        h = ops.sigmoid(o) * ops.tanh(c)
        return h, [h, c]


@keras.saving.register_keras_serializable(package="archdsl")
class Recurrent(keras.layers.Layer):
    """A stack of LSTM or GRU layers computing PyTorch's nn.LSTM / nn.GRU (batch first)."""

    def __init__(
        self,
        kind,
        units,
        layers=1,
        bidirectional=False,
        sequences=False,
        use_bias=True,
        **kwargs,
    ):
        """kind: "lstm" or "gru"; the rest as nn.LSTM's; sequences: return every output."""
        super().__init__(**kwargs)
        self.kind, self.units, self.layers = kind, units, layers
        self.bidirectional, self.sequences = bidirectional, sequences
        self.use_bias = use_bias
        self.stack = [self._layer(k) for k in range(layers)]
        self.supports_masking = True

    def _cell(self):
        """A fresh cell with PyTorch's initialisation and gates."""
        init = _uniform(self.units**-0.5)
        options = {
            "kernel_initializer": init,
            "recurrent_initializer": init,
            "bias_initializer": init,
            "use_bias": self.use_bias,
        }
        if self.kind == "lstm":
            return TorchLSTMCell(self.units, unit_forget_bias=False, **options)
        return keras.layers.GRUCell(self.units, reset_after=True, **options)

    def _rnn(self, sequences, backwards=False):
        """One direction of one layer."""
        return keras.layers.RNN(
            self._cell(),
            return_sequences=sequences,
            go_backwards=backwards,
            zero_output_for_mask=sequences,
        )

    def _layer(self, k):
        """Layer k: one RNN, or a forward and a backward one whose outputs are joined."""
        sequences = self.sequences or k < self.layers - 1
        if not self.bidirectional:
            return self._rnn(sequences)
        return keras.layers.Bidirectional(
            self._rnn(sequences),
            backward_layer=self._rnn(sequences, backwards=True),
        )

    def directions(self, k):
        """[(PyTorch's name suffix, cell)] of layer k."""
        layer = self.stack[k]
        if not self.bidirectional:
            return [("", layer.cell)]
        return [("", layer.forward_layer.cell), ("_reverse", layer.backward_layer.cell)]

    def call(self, x, mask=None):
        """(N, L, D) -> (N, L, units * directions) or (N, units * directions)."""
        for layer in self.stack:
            x = layer(x, mask=mask)
        return x

    def compute_mask(self, inputs, mask=None):
        """No mask leaves this layer (the model passes one explicitly)."""

    def get_config(self):
        """Constructor arguments, for saving."""
        return {
            **super().get_config(),
            "kind": self.kind,
            "units": self.units,
            "layers": self.layers,
            "bidirectional": self.bidirectional,
            "sequences": self.sequences,
            "use_bias": self.use_bias,
        }
