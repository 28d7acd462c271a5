"""The ONNX graph as the importer reads it: data nodes, constants, static shapes, and queries."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(eq=False)
class Node:
    """One ONNX node: op type, inputs and outputs by value name, attributes, and its place in
    the file (`position`, 1-based, for error messages)."""

    op_type: str
    name: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict
    position: int
    domain: str = ""
    proto: object = None  # the onnx.NodeProto, to evaluate the node on constants

    def attr(self, key: str, default=None):
        """An attribute's value (ints, floats, lists, bytes decoded to str), or `default`."""
        return self.attrs.get(key, default)


@dataclass
class Net:
    """What is left of the graph once constants are folded: the data nodes in topological
    order, every constant by value name, every value's static shape (batch included)."""

    nodes: list[Node]
    constants: dict  # value name -> numpy array
    shapes: dict[str, tuple[int, ...]]
    input: str
    output: str
    opset: int
    consumers: dict[str, list[Node]] = field(default_factory=dict)
    producers: dict[str, Node] = field(default_factory=dict)

    def __post_init__(self):
        for node in self.nodes:
            for value in node.outputs:
                self.producers[value] = node
            for value in node.inputs:
                if value:
                    self.consumers.setdefault(value, []).append(node)

    def const(self, value: str):
        """The constant array of `value`, or None for a data value (or an absent input)."""
        return self.constants.get(value) if value else None

    def shape(self, value: str) -> tuple[int, ...]:
        """The static shape of a value, the batch dimension first."""
        return self.shapes[value]

    def data_inputs(self, node: Node) -> list[str]:
        """The node's inputs that are not constants."""
        return [v for v in node.inputs if v and v not in self.constants]

    def uses(self, value: str) -> int:
        """How many nodes read `value`, the graph output counting as one."""
        return len(self.consumers.get(value, ())) + (value == self.output)

    def inner(self, value: str, *op_types: str) -> Node | None:
        """The producer of `value` when it is one of `op_types` and only one node reads `value`
        (so a pattern may absorb it), else None."""
        node = self.producers.get(value)
        if node is None or node.op_type not in op_types or self.uses(value) != 1:
            return None
        return node

    def scalar(self, value: str) -> float | None:
        """A one-element constant as a float, else None."""
        array = self.const(value)
        return float(array.reshape(-1)[0]) if array is not None and array.size == 1 else None
