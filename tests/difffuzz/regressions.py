"""Issue 19's six disagreements, as the minimal specs the issue gives, and those the fuzzer found
since: the harness runs them in the default test, where each must show no disagreement."""

from __future__ import annotations

from .spec import Block, Call, Op, Ref, Spec, Stmt


def conv(filters: int, **args) -> Op:
    """conv(filters, ...) with filters written positionally."""
    return Op("conv", {"filters": filters, **args}, 1)


FLATTEN = Op("flatten")

CASES: dict[str, Spec] = {
    # 1: conv with ceil=true and padding at least the kernel (shapes said 3 x 3, Keras built 4)
    "conv_ceil_pad_over_kernel": Spec(
        "ConvCeil",
        [("x", (1, 5, 5))],
        [Stmt("s", [conv(1, kernel=1, stride=2, pad=1, ceil=True)])],
    ),
    # 2: nearest resize at an exact half-pixel tie: (14 + 0.5) * 2 / 29 = 1
    "nearest_resize_tie": Spec(
        "NearestTie",
        [("x", (1, 1, 2))],
        [Stmt("s", [Op("resize", {"size": (1, 29), "mode": "nearest"}, 1)])],
    ),
    # 3: a statement that does not reach the output
    "unused_statement": Spec(
        "Unused",
        [("x", (2, 4, 4))],
        [
            Stmt("side", [conv(3, kernel=1)]),
            Stmt("s", [conv(2, kernel=1)], source="x"),
        ],
    ),
    # 4: concat of a flattened map with another vector
    "concat_flat_map_and_vector": Spec(
        "ConcatFlat",
        [("x", (3, 2, 2))],
        [
            Stmt("a", [FLATTEN]),
            Stmt("b", [Op("global_avgpool"), FLATTEN], source="x"),
            Stmt("s", [Op("dense", {"units": 2}, 1)], merge=("concat", ["a", "b"])),
        ],
    ),
    # 5: add of two flattened maps of different C x H x W layouts ...
    "add_flat_maps_of_two_layouts": Spec(
        "AddFlat",
        [("x", (4, 2, 3)), ("y", (2, 3, 4))],
        [
            Stmt("a", [FLATTEN], source="x"),
            Stmt("b", [FLATTEN], source="y"),
            Stmt("s", [], merge=("add", ["a", "b"])),
        ],
    ),
    # ... and of a flattened map with a dense layer's output
    "add_flat_map_and_dense": Spec(
        "AddDense",
        [("x", (4, 2, 3))],
        [
            Stmt("a", [FLATTEN]),
            Stmt("b", [Op("global_avgpool"), FLATTEN, Op("dense", {"units": 24}, 1)], source="x"),
            Stmt("s", [], merge=("add", ["a", "b"])),
        ],
    ),
    # 6: a model whose output is a flattened map, bare, after an activation, after softmax
    "flat_map_output": Spec(
        "FlatOut", [("x", (2, 2, 3))], [Stmt("s", [conv(3, kernel=1), FLATTEN])]
    ),
    "flat_map_output_relu": Spec(
        "FlatRelu", [("x", (2, 2, 3))], [Stmt("s", [conv(3, kernel=1), FLATTEN, Op("relu")])]
    ),
    "flat_map_output_softmax": Spec(
        "FlatSoftmax",
        [("x", (2, 2, 3))],
        [Stmt("s", [conv(3, kernel=1), FLATTEN, Op("softmax")])],
    ),
    # found by this fuzzer (not in the issue): TensorFlow's oneDNN Conv2D with one input
    # channel, vertical stride 1, horizontal stride > 1 and one output column is wrong
    "keras_strided_conv_one_column": Spec(
        "StridedColumn", [("x", (1, 3, 3))], [Stmt("s", [conv(1, kernel=2, stride=(1, 2))])]
    ),
    # found by this fuzzer: Keras's TensorFlow `ops.add` takes a one-channel gate over a batch
    # as large as the map's height for a bias and adds it along the height
    "keras_add_one_channel_gate": Spec(
        "OneChannelGate",
        [("image", (1, 4, 1))],
        [
            Stmt("head1", [Op("global_avgpool")], source="image"),
            Stmt("stem2", [], merge=("add", ["image", "head1"])),
        ],
    ),
    # found by this fuzzer: a block call reading by name a block-call statement written after it
    # (`from feat1`, feat1 = unit(...) * 1): the class's input was the statement's name, not
    # its last expanded statement's, and both emitters failed with a KeyError
    "call_reads_a_later_call_by_name": Spec(
        "LaterCall",
        [("x", (1, 1, 1))],
        [
            Stmt("weights", call=Call("unit", {"w": 5}), source="feat1"),
            Stmt("feat1", call=Call("unit", {"w": 1}, repeat=1), source="x"),
            Stmt("pool8", [Op("layer_scale")], source="weights"),
        ],
        blocks=[
            Block(
                "unit",
                [("w", "int", None)],
                [
                    Stmt("a", [conv(Ref("w"), kernel=1)]),
                    Stmt("b", [conv(Ref("w"), kernel=1)], source="in"),
                    Stmt("out", [], merge=("add", ["a", "b"])),
                ],
            )
        ],
    ),
}


def labelled() -> list:
    """[(label, spec)] of every case."""
    return [(f"issue 19: {name}", spec) for name, spec in CASES.items()]
