"""The portable weight layout: which tensors a spec's model has, and checking an .npz against it.

Layout (both backends read and write it): one .npz file, one array per tensor, float32, keyed
`statement.op.param` with the names of reports (`conv1.conv.weight`):
  conv   weight (filters, in_channels / groups, kh, kw), bias (filters,)
  dense  weight (units, inputs), bias (units,); a dense layer fed by `flatten` of a C x H x W map
         takes its inputs in C, H, W order (PyTorch's), whatever the backend's own order
  batchnorm weight (scale), bias (shift), running_mean, running_var, all (channels,)
  layernorm weight (scale), bias (shift), both (channels,)
  layer_scale scale (channels,) (torchvision's ConvNeXt keeps it as (channels, 1, 1))
  class_token token (1, 1, D); position_embedding embedding (1, L, D) (torchvision ViT's
         class_token and encoder.pos_embedding)
  attention in_proj_weight (3 * D, D) (the Q, K, V rows), in_proj_bias (3 * D,),
         out_proj.weight (D, D), out_proj.bias (D,): nn.MultiheadAttention's names and shapes
Reading the file needs no framework: .npz is a zip of .npy files whose headers are checked by
backends/common/npzcheck.py (shared with the runtimes), which reads no array data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from archdsl.backends.common.npzcheck import NpzError, printable, read_headers
from archdsl.shapes import Report, tensors


def expected_tensors(report: Report) -> dict[str, tuple[int, ...]]:
    """Every tensor of the model, by portable name, with its shape (the ops' specs say which)."""
    found: dict[str, tuple[int, ...]] = {}
    layers = report.by_statement()
    for stmt in report.graph.statements:
        for op, layer in zip(stmt.ops, layers.get(stmt.name, []), strict=False):
            if layer.built:
                held = tensors(op, list(layer.input_shapes))
                found.update({f"{layer.name}.{name}": t.shape for name, t in held.items()})
    return found


class WeightFileError(Exception):
    """The file is not a readable .npz of arrays (a one-line message)."""


def npz_shapes(path: Path) -> dict[str, tuple[tuple[int, ...], str]]:
    """{name: (shape, dtype)} of every array in an .npz, read from the .npy headers only.

    Names are returned with their control characters made visible (printable to a terminal):
    a name that needed it holds a backslash, so it is never one of a spec's tensors.
    """
    try:
        return {printable(name): found for name, found in read_headers(path).items()}
    except NpzError as exc:
        raise WeightFileError(str(exc)) from None


@dataclass
class Comparison:
    """How a weight file differs from what a spec's model needs."""

    missing: list[str]
    extra: list[str]
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]]
    matched: int

    @property
    def ok(self) -> bool:
        """True when the file holds exactly the model's tensors with the right shapes."""
        return not (self.missing or self.extra or self.mismatched)


def compare(expected: dict[str, tuple[int, ...]], found: dict[str, tuple]) -> Comparison:
    """Missing, extra and wrongly shaped tensors."""
    missing = [n for n in expected if n not in found]
    extra = sorted(n for n in found if n not in expected)
    mismatched = [
        (n, expected[n], tuple(found[n][0]))
        for n in expected
        if n in found and tuple(found[n][0]) != expected[n]
    ]
    matched = len(expected) - len(missing) - len(mismatched)
    return Comparison(missing, extra, mismatched, matched)
