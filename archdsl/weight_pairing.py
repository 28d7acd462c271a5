"""Pairing the tensors of two models by graph structure, framework-free (plain records only).

Each side of a pairing is a `LayerGraph`: its *tensor layers* and the data flow between them.

- `TensorLayer`: one layer that holds tensors, with
  - `name`: unique on its side (ours: the report's layer name, `layer1.0.conv1.conv`; theirs: the
    source's module path, `layer1.0.conv1`);
  - `kind`: `conv`, `conv_transpose`, `dense`, `batchnorm`, `layernorm`, `layer_scale` (a
    free per-channel scale) or `window_attention` (torchvision's Swin attention, its qkv and
    proj Linears included); `conv` and `dense` pair with each other (a Linear used as a 1x1
    conv), every other kind only with itself;
  - `tensors`: `(role, key, shape)` triples. The role is the tensor's name in the portable
    layout (see backends/common/portable.py): `weight` and `bias` of conv / conv_transpose /
    dense, in PyTorch's layout (conv (filters, in / groups, kh, kw), dense (units, inputs),
    conv_transpose (in, filters / groups, kh, kw)); `weight`, `bias`, `running_mean`,
    `running_var` of batchnorm; `weight`, `bias` of layernorm; `scale` of layer_scale;
    `qkv.weight`, `qkv.bias`, `proj.weight`, `proj.bias`, `relative_position_bias_table` of
    window_attention (torchvision's names and layouts). The key
    is the tensor's name in its own file (ours: the portable name `layer1.0.conv1.conv.weight`;
    theirs e.g. `layer1.0.conv1.weight`); the shape is as that file stores it (a reader
    converts layouts to the portable one before making records; shapes may still differ by
    trailing dimensions of size 1, which pairing bridges: (C, 1, 1) -> (C,), (out, in) ->
    (out, in, 1, 1)). Counters such as `num_batches_tracked` are not tensors of a layer.
  - `order`: the layer's position in execution order (a bare state_dict: registration order).
- `Flow`: `source` feeds `target` through tensor-free ops only (activations, pools, dropout,
  add, mul, flatten, reshapes, chunks, shuffles). `source` is a layer's name or `INPUT` (the
  model's input); `offset` is the channel at which the source's channels enter the target's
  input, shifted by every concat on the way (concat of inputs of C1, C2, ... channels puts
  the k-th at C1 + ... + C(k-1)); every other op keeps it. A layer's input reached along
  several paths has one Flow per (source, offset). Both sides must build flows by these same
  rules, so that the same network gives the same flows whatever its framework.
- `LayerGraph.flows` is None when only the order is known (a bare state_dict): then layers pair
  in order, by kind and shape, and the first disagreement is refused.

`pair(ours, theirs, leave_out)` pairs every tensor of `theirs` with one of `ours` and returns a
`Pairing`, or raises `PairingError` (a one-line message naming the first layers that do not
pair). With flows, pairing is colour refinement (Weisfeiler-Lehman) over each layer's kind and
tensor shapes and its predecessors and successors with their offsets; layers the refinement
cannot tell apart are paired in execution order one pair at a time, refining again after each,
and the result must map one graph onto the other exactly (every layer's kind and shapes, every
flow with its offset), or it is refused. `leave_out` names layers of ours whose tensors are not
taken from theirs (a new head): their partners are found by structure alone and left out.
"""

from __future__ import annotations

from archdsl.weight_order import pair_in_order
from archdsl.weight_records import (
    INPUT,
    Flow,
    LayerGraph,
    Pairing,
    PairingError,
    TensorLayer,
    family,
    stripped,
)
from archdsl.weight_refinement import pair_by_structure

__all__ = [
    "INPUT",
    "Flow",
    "LayerGraph",
    "Pairing",
    "PairingError",
    "TensorLayer",
    "family",
    "pair",
    "stripped",
]


def pair(ours: LayerGraph, theirs: LayerGraph, leave_out: frozenset[str] = frozenset()) -> Pairing:
    """Pair every tensor of `theirs` with one of `ours` (see the module's docstring)."""
    unknown = sorted(set(leave_out) - {layer.name for layer in ours.layers})
    if unknown:
        raise PairingError(f"{ours.origin} has no layer {unknown[0]} to leave out")
    if ours.flows is None or theirs.flows is None:
        return pair_in_order(ours, theirs, frozenset(leave_out))
    return pair_by_structure(ours, theirs, frozenset(leave_out))
