"""Reading an ONNX node's inputs for a translation: its one data input, its constant weights."""

from __future__ import annotations

from archdsl.diagnostics import visible
from archdsl.onnx_import.errors import unsupported
from archdsl.onnx_import.graph import Net, Node
from archdsl.onnx_import.layers import Layer


def only_output(net: Net, node: Node) -> None:
    """Unsupported when an optional second output of `node` (indices, mask, ...) is read."""
    for extra in node.outputs[1:]:
        if extra and net.uses(extra):
            raise unsupported(
                node, f"its output '{visible(extra)}' is read; the language computes only the first"
            )


def data_input(net: Net, node: Node) -> str:
    """The node's one data (non-constant) input."""
    values = net.data_inputs(node)
    if len(values) != 1:
        raise unsupported(
            node,
            f"it reads {len(values)} tensors that depend on the model's input where the "
            "language's op reads one (its weights must be constants)",
        )
    if node.inputs[0] != values[0]:
        raise unsupported(node, "its first input is a constant, where the language's op reads data")
    return values[0]


def single(net: Net, node: Node, op: str, args=None, tensors=None) -> Layer:
    """A layer of one op reading the node's one data input."""
    only_output(net, node)
    return Layer(op, args or [], [data_input(net, node)], node.outputs[0], node, tensors or {})


def weight(net: Net, node: Node, index: int, what: str):
    """The constant input `index` of `node` as float32, or Unsupported."""
    import numpy as np

    array = net.const(node.inputs[index]) if len(node.inputs) > index else None
    if array is None:
        raise unsupported(node, f"its {what} is not a constant (an initialiser)")
    return np.asarray(array, dtype=np.float32)


def optional_weight(net: Net, node: Node, index: int, what: str):
    """A constant optional input as float32, None when absent."""
    if len(node.inputs) <= index or not node.inputs[index]:
        return None
    return weight(net, node, index, what)
