"""A layer of the spec being written (one op of the language, the ONNX nodes it came from, its
tensors), and how its arguments are written."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from archdsl.onnx_import.errors import unsupported
from archdsl.onnx_import.graph import Node


@dataclass(eq=False)
class Layer:
    """One op of the spec: its name in the language, its written arguments (key "" for a
    positional one), the data values it reads, the value it computes, the ONNX node whose name
    and position it takes, and its tensors by portable parameter name."""

    op: str
    args: list[tuple[str, str]]
    inputs: list[str]
    output: str
    node: Node
    tensors: dict = field(default_factory=dict)

    def call(self) -> str:
        """The op as the spec writes it: `conv(64, kernel=3, pad=1)`, `relu`."""
        if not self.args:
            return self.op
        return f"{self.op}({', '.join(f'{k}={v}' if k else v for k, v in self.args)})"


def number(value: float, node: Node) -> str:
    """A float as the language writes it: the shortest float32 spelling (`1e-05`, `0.75`)."""
    import numpy as np

    if not math.isfinite(value):
        raise unsupported(node, f"the value {value} is not a finite number")
    return str(np.float32(value))


def pair(values, node: Node, what: str) -> str:
    """`3` or `3 x 5`: a size along H and W."""
    values = [int(v) for v in values]
    if len(values) != 2:
        raise unsupported(node, f"its {what} has {len(values)} axes: the language's maps have 2")
    return str(values[0]) if values[0] == values[1] else f"{values[0]} x {values[1]}"


def keep(args: list[tuple[str, object, object]]) -> list[tuple[str, str]]:
    """(key, text) of the arguments that differ from their defaults, in order."""
    return [(key, text) for key, text, default in args if text != default]
