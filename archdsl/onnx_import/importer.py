"""The import: read, fold and translate the ONNX graph, write the spec, check it with the compiler
(its shapes must be ONNX's, its tensors the layout's), and only then write the two files."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from archdsl.backends.common.metrics_log import atomic_write
from archdsl.compiler import check_source
from archdsl.diagnostics import visible
from archdsl.onnx_import.channels_last import with_transposes_restored
from archdsl.onnx_import.convert import convert
from archdsl.onnx_import.errors import ImportFailure, Unsupported, unsupported
from archdsl.onnx_import.folding import folded_net
from archdsl.onnx_import.graph import Net
from archdsl.onnx_import.loading import read_model
from archdsl.onnx_import.patterns import matches
from archdsl.onnx_import.statements import comment, group, name_statements, render, safe_name
from archdsl.weights import expected_tensors

DESCRIPTION_LIMIT = 200  # characters of the model's doc string quoted in the header


@dataclass
class Imported:
    """The spec's text, its weights by portable name, and counts for the summary."""

    text: str
    arrays: dict
    statements: int
    layers: int


def import_onnx(path: Path, spec_name: str, weights_name: str) -> Imported:
    """The spec and weights of the ONNX model in `path` (nothing is written here)."""
    loaded = read_model(path)
    net = with_transposes_restored(folded_net(loaded))
    layers = translate(net)
    rank = len(net.shape(net.input))
    written = safe_name(net.input, set())  # a reserved word gets a `_`: take a plain name
    plain = "image" if rank == 4 else "features"
    input_name = written if written and not written.endswith("_") else plain
    statements = name_statements(net, group(net, layers), input_name)
    model = safe_name(path.stem, set()) or "Imported"
    dims = " x ".join(map(str, net.shape(net.input)[1:]))
    text = render(
        _header(loaded, path, weights_name), model, f"input {input_name}: {dims}", statements, net
    )
    checked = check_source(text, spec_name)
    errors = [d for d in checked.diagnostics if d.severity == "error"]
    if errors:  # what the language refuses that no translation rule foresaw
        where = f"line {errors[0].span.line}: " if errors[0].span else ""
        raise Unsupported(f"the spec written for it does not check: {where}{errors[0].message}")
    arrays = _weights(checked, statements, net)
    return Imported(text, arrays, len(statements), len(layers))


def translate(net: Net) -> list:
    """The layers computing the graph, in its order: patterns first, then node by node."""
    found, absorbed = matches(net)
    layers = []
    for node in net.nodes:
        if node in found:
            layers += found[node]
        elif node not in absorbed:
            layers += convert(net, node)
    if not layers:
        raise Unsupported("the model computes nothing: its output is its input")
    known = {net.input} | {layer.output for layer in layers}
    for layer in layers:
        missing = [v for v in layer.inputs if v not in known]
        if missing:
            raise unsupported(
                layer.node, f"it reads '{visible(missing[0])}', which no layer computes"
            )
    return layers


def _weights(checked, statements, net: Net) -> dict:
    """{portable name: array} of every layer's tensors; each layer's shape is checked against
    ONNX's, and the names and shapes against the spec's weight layout."""
    import numpy as np

    by_statement = checked.report.by_statement()
    arrays = {}
    for statement in statements:
        for layer, reported in zip(statement.layers, by_statement[statement.name], strict=True):
            want = net.shape(layer.output)[1:]
            if tuple(reported.output_shape) != tuple(want):
                raise unsupported(
                    layer.node,
                    f"the language computes {list(reported.output_shape)} for it where ONNX "
                    f"infers {list(want)}",
                )
            for param, array in layer.tensors.items():
                arrays[f"{reported.name}.{param}"] = np.array(array, dtype=np.float32, order="C")
    expected = expected_tensors(checked.report)
    shapes = {name: tuple(a.shape) for name, a in arrays.items()}
    if shapes != expected:
        wrong = sorted(set(shapes.items()) ^ set(expected.items()))[:3]
        raise Unsupported(f"the imported tensors do not fit the spec's weight layout: {wrong}")
    return arrays


def _header(loaded, path: Path, weights_name: str) -> list[str]:
    """The comment lines saying where the spec came from."""
    proto = loaded.proto
    producer = " ".join(p for p in (proto.producer_name, proto.producer_version) if p)
    lines = [
        f"Imported by `archdsl import` from {path.name}",
        f"(ONNX IR version {proto.ir_version}, opset {loaded.opset}"
        + (f", written by {producer})" if producer else ")"),
        f"Weights: {weights_name} (portable .npz; `archdsl weights SPEC {weights_name}` checks it)",
    ]
    if loaded.symbolic_batch:
        lines.append("The ONNX model's batch size is symbolic; every size here is per example.")
    description = (proto.doc_string or proto.graph.doc_string).strip()
    if description:
        shown = comment(description)
        cut = shown[:DESCRIPTION_LIMIT] + ("..." if len(shown) > DESCRIPTION_LIMIT else "")
        lines.append(f"Its description: {cut}")
    return lines


def check_targets(paths: list[Path], force: bool) -> None:
    """ImportFailure unless each output path is absent, or a file --force may replace."""
    if len({os.path.abspath(p) for p in paths}) != len(paths):
        raise ImportFailure(f"{visible(str(paths[0]))}: the spec and the weights need two files")
    for path in paths:
        if not os.path.lexists(path):
            continue
        mode = path.lstat().st_mode
        if stat.S_ISDIR(mode):
            raise ImportFailure(f"{visible(str(path))}: is a directory, expected a file to write")
        if not force:
            raise ImportFailure(
                f"{visible(str(path))}: exists; refusing to overwrite it (choose another file, "
                "or pass --force)"
            )
        if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
            raise ImportFailure(
                f"{visible(str(path))}: not a regular file (a device, FIFO or socket?)"
            )


def write_outputs(imported: Imported, spec: Path, weights: Path) -> None:
    """Write the weights, then the spec, each atomically (a link at either is replaced, never
    followed); should the spec fail, a weight file this call created is removed again."""
    import numpy as np

    existed = os.path.lexists(weights)
    try:
        atomic_write(weights, lambda f: np.savez(f, **imported.arrays))
    except OSError as exc:
        raise ImportFailure(
            f"{visible(str(weights))}: cannot write it: {exc.strerror or exc}"
        ) from None
    try:
        atomic_write(spec, lambda f: f.write(imported.text.encode("utf-8")))
    except OSError as exc:
        if not existed:
            weights.unlink(missing_ok=True)
        raise ImportFailure(
            f"{visible(str(spec))}: cannot write it: {exc.strerror or exc}"
        ) from None
