"""Weight pairing on plain records (archdsl/weight_pairing.py), and the .safetensors reader.

No framework: the graphs are written by hand, so that each rule of the pairing is seen alone.
"""

import json
import struct

import numpy as np
import pytest

from archdsl.safetensors_file import SafetensorsError, read_safetensors
from archdsl.weight_pairing import INPUT, Flow, LayerGraph, PairingError, TensorLayer, pair


def conv(name, out, inp, k=1, order=0):
    """A conv layer record with a weight and a bias, keys `NAME.weight`, `NAME.bias`."""
    return TensorLayer(
        name,
        "conv",
        (("weight", f"{name}.weight", (out, inp, k, k)), ("bias", f"{name}.bias", (out,))),
        order,
    )


def graph(layers, flows, origin):
    """A LayerGraph of layers (ordered as given) and (source, target, offset) flows."""
    layers = [TensorLayer(x.name, x.kind, x.tensors, i) for i, x in enumerate(layers)]
    return LayerGraph(layers, [Flow(*f) for f in flows], origin)


def inception(names, branch_order):
    """Two 1x1 convs of the same shape from the input (one after a pool, in the real thing),
    concatenated at channels 0 and 8, then a conv reading all 16: only the offsets tell the
    two branches apart. `branch_order` is the order in which the branches are listed."""
    a, b, head = names
    layers = {a: conv(a, 8, 3), b: conv(b, 8, 3), head: conv(head, 4, 16)}
    listed = [layers[n] for n in branch_order] + [layers[head]]
    flows = [(INPUT, a, 0), (INPUT, b, 0), (a, head, 0), (b, head, 8)]
    return graph(listed, flows, "x")


def test_concat_offsets_tell_same_shaped_branches_apart():
    ours = inception(("first", "second", "head"), ("first", "second"))
    theirs = inception(("p", "q", "out"), ("q", "p"))  # listed (and run) in the other order
    keys = pair(ours, theirs).keys
    assert keys["p.weight"] == "first.weight" and keys["q.weight"] == "second.weight"
    assert keys["out.bias"] == "head.bias"


def test_layers_that_cannot_be_told_apart_and_are_interchangeable_pair_in_order():
    """add(conv_a(x), conv_b(x)): swapping the two gives the same function."""
    for names in (("a", "b", "out"), ("p", "q", "r")):
        layers = [conv(names[0], 8, 3), conv(names[1], 8, 3), conv(names[2], 4, 8)]
        flows = [(INPUT, names[0], 0), (INPUT, names[1], 0)]
        flows += [(names[0], names[2], 0), (names[1], names[2], 0)]
        if names[0] == "a":
            ours = graph(layers, flows, "ours")
        else:
            theirs = graph(layers, flows, "theirs")
    assert pair(ours, theirs).layers == {"p": "a", "q": "b", "r": "out"}


def cycle_graph(cycles, origin):
    """Six equal layers in cycles (two triangles, or one hexagon): graphs colour refinement
    cannot tell apart, although no pairing maps one onto the other."""
    flows = [(f"n{c[i]}", f"n{c[(i + 1) % len(c)]}", 0) for c in cycles for i in range(len(c))]
    return graph([conv(f"n{i}", 4, 4) for i in range(6)], flows, origin)


def test_a_choice_that_does_not_map_the_graphs_is_refused():
    ours = cycle_graph([(0, 1, 2), (3, 4, 5)], "ours")
    theirs = cycle_graph([(0, 1, 2, 3, 4, 5)], "theirs")
    with pytest.raises(PairingError, match="cannot be paired with certainty"):
        pair(ours, theirs)


def test_different_wiring_of_the_same_layers_is_refused():
    """A chain a -> b -> c against a feeding both b and c: the same layers, other flows (a
    chain whose equal layers b and c are named the other way round is the same graph)."""
    layers = [conv("a", 4, 3), conv("b", 4, 4), conv("c", 4, 4)]
    ours = graph(layers, [(INPUT, "a", 0), ("a", "b", 0), ("b", "c", 0)], "ours")
    renamed = graph(layers, [(INPUT, "a", 0), ("a", "c", 0), ("c", "b", 0)], "theirs")
    assert pair(ours, renamed).layers == {"a": "a", "c": "b", "b": "c"}
    theirs = graph(layers, [(INPUT, "a", 0), ("a", "b", 0), ("a", "c", 0)], "theirs")
    with pytest.raises(
        PairingError, match=r"connected differently: .* for theirs.s conv a \(weight"
    ):
        pair(ours, theirs)


def test_kinds_and_trailing_ones():
    """A Linear (out, in) pairs with a 1x1 conv (out, in, 1, 1), a (C, 1, 1) scale with (C,);
    a conv does not pair with a batch norm of as many values, nor (2, 2) with (4,)."""
    dense = TensorLayer("fc", "dense", (("weight", "fc.weight", (4, 8)),), 0)
    scale = TensorLayer("s", "layer_scale", (("scale", "s", (4, 1, 1)),), 1)
    ours_conv = TensorLayer("c", "conv", (("weight", "c.weight", (4, 8, 1, 1)),), 0)
    ours_scale = TensorLayer("t", "layer_scale", (("scale", "t.scale", (4,)),), 1)
    flows = [(INPUT, 0), (0, 1)]

    def two(a, b, origin):
        names = (a.name, b.name)
        return graph(
            [a, b], [(INPUT if s == INPUT else names[s], names[t], 0) for s, t in flows], origin
        )

    assert pair(two(ours_conv, ours_scale, "ours"), two(dense, scale, "theirs")).keys == {
        "fc.weight": "c.weight",
        "s": "t.scale",
    }
    square = TensorLayer("t", "layer_scale", (("scale", "t.scale", (2, 2)),), 1)
    with pytest.raises(PairingError, match="layers differ"):
        pair(two(ours_conv, square, "ours"), two(dense, scale, "theirs"))
    norm = TensorLayer("c", "layernorm", (("weight", "c.weight", (32,)),), 0)
    with pytest.raises(PairingError, match="layers differ"):
        pair(two(norm, ours_scale, "ours"), two(dense, scale, "theirs"))


def test_a_left_out_head_takes_its_partner_out():
    body = [conv("a", 8, 3), conv("head", 10, 8)]
    ours = graph(body, [(INPUT, "a", 0), ("a", "head", 0)], "ours")
    theirs = graph([conv("x", 8, 3), conv("fc", 1000, 8)], [(INPUT, "x", 0), ("x", "fc", 0)], "t")
    with pytest.raises(PairingError):
        pair(ours, theirs)
    result = pair(ours, theirs, frozenset({"head"}))
    assert result.keys == {"x.weight": "a.weight", "x.bias": "a.bias"}
    assert result.left_out == ["fc.weight", "fc.bias"]
    with pytest.raises(PairingError, match="no layer nothing"):
        pair(ours, theirs, frozenset({"nothing"}))


def test_in_order_without_flows_refuses_at_the_first_difference():
    ours = LayerGraph([conv("a", 8, 3, order=0), conv("b", 4, 8, order=1)], None, "ours")
    same = LayerGraph([conv("x", 8, 3, order=0), conv("y", 4, 8, order=1)], None, "file")
    assert pair(ours, same).layers == {"x": "a", "y": "b"} and pair(ours, same).by_order
    swapped = LayerGraph([conv("y", 4, 8, order=0), conv("x", 8, 3, order=1)], None, "file")
    with pytest.raises(
        PairingError, match=r"file's conv y \(weight 4 x 8 x 1 x 1, bias 4\) meets ours's conv a"
    ):
        pair(ours, swapped)
    head = LayerGraph([conv("x", 8, 3, order=0), conv("fc", 1000, 8, order=1)], None, "file")
    left = pair(ours, head, frozenset({"b"}))
    assert left.keys == {"x.weight": "a.weight", "x.bias": "a.bias"}
    assert left.left_out == ["fc.weight", "fc.bias"]
    short = LayerGraph([conv("x", 8, 3, order=0)], None, "file")
    with pytest.raises(PairingError, match=r"ours's conv b .* has no partner in file"):
        pair(ours, short)


# ----------------------------------------------------------------------------- .safetensors


def safetensors_bytes(entries):
    """A .safetensors file of {name: (dtype, shape, raw bytes)}."""
    header, data = {"__metadata__": {"format": "pt"}}, b""
    for name, (dtype, shape, raw) in entries.items():
        header[name] = {
            "dtype": dtype,
            "shape": shape,
            "data_offsets": [len(data), len(data) + len(raw)],
        }
        data += raw
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def test_safetensors_floats_become_float32(tmp_path):
    values = np.array([[1.5, -2.0], [0.25, 3.0]], dtype=np.float32)
    bf16 = (values.view(np.uint32) >> 16).astype("<u2").tobytes()  # exact: few mantissa bits
    path = tmp_path / "w.safetensors"
    path.write_bytes(
        safetensors_bytes(
            {
                "a": ("F32", [2, 2], values.astype("<f4").tobytes()),
                "b": ("F16", [2, 2], values.astype("<f2").tobytes()),
                "c": ("BF16", [2, 2], bf16),
                "n": ("I64", [], np.int64(7).tobytes()),
            }
        )
    )
    arrays = read_safetensors(path)
    assert list(arrays) == ["a", "b", "c", "n"]
    for name in "abc":
        assert arrays[name].dtype == np.float32
        np.testing.assert_array_equal(arrays[name], values)
    assert arrays["n"] == 7


@pytest.mark.parametrize(
    "content, message",
    [
        (b"\x00" * 4, "bad header length"),
        (struct.pack("<Q", 3) + b"abc", "not JSON"),
        (safetensors_bytes({"a": ("F32", [4], b"\x00" * 8)}), "data_offsets do not hold"),
        (safetensors_bytes({"a": ("C64", [1], b"\x00" * 8)}), "no valid dtype"),
    ],
)
def test_a_bad_safetensors_file_is_refused(content, message, tmp_path):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(SafetensorsError, match=message):
        read_safetensors(path)
