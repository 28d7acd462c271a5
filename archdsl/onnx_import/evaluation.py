"""Running a matched subgraph with onnx's reference evaluator, to verify what it computes."""

from __future__ import annotations

from archdsl.onnx_import.folding import _renamed_proto
from archdsl.onnx_import.graph import Net, Node


def evaluated(net: Net, nodes: list[Node], x: str, out: str, array):
    """What the nodes compute as `out` from `array` given as `x` (onnx's reference evaluator),
    or None when the evaluator cannot run them."""
    from onnx import TensorProto, helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    ordered = sorted(nodes, key=lambda n: n.position)
    used = dict.fromkeys(v for n in ordered for v in n.inputs if v in net.constants)
    graph = helper.make_graph(
        [_renamed_proto(n.proto, n) for n in ordered],
        "subgraph",
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, net.shape(x))],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)],
        [numpy_helper.from_array(net.constants[v], v) for v in used],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", net.opset)])
    try:
        (got,) = ReferenceEvaluator(model).run(None, {x: array})
    except Exception:  # a subgraph the evaluator cannot run is none we can vouch for
        return None
    return got
