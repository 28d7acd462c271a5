"""What pairing by tensors cannot see: the settings of paired layers that change their outputs.

Two layers pair when their tensors do (archdsl/weight_pairing.py), whatever their strides,
paddings, dilations or epsilons. A source that knows its layers' settings (a Keras model)
gives them as `{their layer: Settings}`; the spec's are read off its report, and every
difference between paired layers becomes a note after the import: the weights were imported,
but the spec's model will not compute what the source's did. Framework-free.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from archdsl.shapes import Report, resolve_padding
from archdsl.spec_records import spec_graph
from archdsl.weight_pairing import LayerGraph, pair

Settings = dict[str, object]  # stride, dilation, padding ((top, bottom), (left, right)), eps


class Difference(NamedTuple):
    """One setting that differs between a paired layer of theirs and one of ours."""

    setting: str
    theirs: object
    ours: object
    their_layer: str
    our_layer: str


def window_settings(
    pad, size: tuple[int, int], kernel: tuple, stride: tuple, dilation: tuple
) -> Settings:
    """A window's settings: its stride, dilation and padding resolved on an H x W input
    (`same` as TensorFlow pads)."""
    padding = tuple(
        resolve_padding(
            pad if isinstance(pad, str) else pad[a], size[a], kernel[a], stride[a], dilation[a]
        )
        for a in (0, 1)
    )
    return {"stride": tuple(stride), "dilation": tuple(dilation), "padding": padding}


def spec_settings(report: Report) -> dict[str, Settings]:
    """{our layer: its settings} for the spec's convs and norms."""
    found: dict[str, Settings] = {}
    layers = report.by_statement()
    for stmt in report.graph.statements:
        for op, layer in zip(stmt.ops, layers.get(stmt.name, []), strict=False):
            if op.op == "conv":
                size = layer.input_shapes[0][1:]
                found[layer.name] = window_settings(op.pad, size, op.kernel, op.stride, op.dilation)
            elif op.op in ("batchnorm", "layernorm"):
                found[layer.name] = {"eps": op.eps}
    return found


def differences(
    ours: dict[str, Settings], theirs: dict[str, Settings], paired: dict[str, str]
) -> Iterator[Difference]:
    """Every setting both paired layers have, in which they differ ({their: our} layer)."""
    for their_layer, our_layer in paired.items():
        mine, other = ours.get(our_layer, {}), theirs.get(their_layer, {})
        for setting in sorted(set(mine) & set(other)):
            if mine[setting] != other[setting]:
                yield Difference(setting, other[setting], mine[setting], their_layer, our_layer)


def setting_notes(
    report: Report, graph: LayerGraph, theirs: dict[str, Settings], leave_out: frozenset[str]
) -> list[str]:
    """One line per kind of difference (setting and values), naming its first pair and how
    many pairs it concerns; [] when the source gave no settings or none differ."""
    if not theirs:
        return []
    paired = pair(spec_graph(report), graph, leave_out).layers
    grouped: dict[tuple, list[Difference]] = {}
    for found in differences(spec_settings(report), theirs, paired):
        grouped.setdefault((found.setting, repr(found.theirs), repr(found.ours)), []).append(found)
    return [_note(graph.origin, found) for found in grouped.values()]


def _note(origin: str, found: list[Difference]) -> str:
    """`note: ...` for one kind of difference."""
    first = found[0]
    others = len(found) - 1
    more = f" (and {others} more pair{'s' if others > 1 else ''})" if others else ""
    return (
        f"note: {first.setting} differs (the outputs may too): {origin}'s {first.their_layer} "
        f"has {first.setting} {_shown(first.theirs)}, the spec's {first.our_layer} "
        f"{_shown(first.ours)}{more}"
    )


def _shown(value) -> str:
    """A setting's value: `0.001`, `2 x 2`, `(0, 1) x (0, 1)`."""
    if isinstance(value, tuple):
        return " x ".join(
            f"({', '.join(map(str, v))})" if isinstance(v, tuple) else str(v) for v in value
        )
    return f"{value:g}" if isinstance(value, float) else str(value)
