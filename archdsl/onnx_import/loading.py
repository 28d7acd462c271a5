"""Reading an ONNX file: the checks a file must pass, its one input and output, static shapes."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from archdsl.diagnostics import visible
from archdsl.onnx_import.errors import ImportFailure, Unsupported, first_line

PROTOBUF_LIMIT = 2**31  # bytes; protobuf cannot read a larger file
FLOAT_TYPES = {1: "float32", 10: "float16", 11: "float64", 16: "bfloat16"}
ANALYSIS_BATCH = 1  # a symbolic batch size is fixed to this while shapes are inferred


@dataclass
class Loaded:
    """A checked ONNX model with its input's batch made static, and facts for the header."""

    proto: object  # onnx.ModelProto
    opset: int
    input: str
    output: str
    symbolic_batch: bool


def read_model(path: Path) -> Loaded:
    """The model in `path`, checked by onnx.checker, its input's batch made static."""
    import onnx

    _check_file(path)
    try:
        proto = onnx.load(str(path))
    except Exception as exc:  # protobuf's DecodeError, a missing external-data file, ...
        raise ImportFailure(
            f"{visible(str(path))}: not an ONNX model ({first_line(exc)})"
        ) from None
    if not proto.ir_version or not proto.graph.node:
        raise ImportFailure(f"{visible(str(path))}: not an ONNX model (no graph of nodes in it)")
    try:
        onnx.checker.check_model(proto)
    except Exception as exc:  # ValidationError, or a model the checker cannot even walk
        raise ImportFailure(
            f"{visible(str(path))}: the model fails onnx's check: {first_line(exc)}"
        ) from None
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)
    name_in, symbolic = _the_input(proto)
    name_out = _the_output(proto)
    return Loaded(proto, opset, name_in, name_out, symbolic)


def _check_file(path: Path) -> None:
    """ImportFailure unless `path` is a regular file protobuf can hold."""
    shown = visible(str(path))
    try:
        status = os.stat(path)
    except FileNotFoundError:
        raise ImportFailure(f"{shown}: no such file") from None
    except OSError as exc:
        raise ImportFailure(f"{shown}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(status.st_mode):
        raise ImportFailure(f"{shown}: is a directory, expected an .onnx file")
    if not stat.S_ISREG(status.st_mode):
        raise ImportFailure(f"{shown}: not a regular file (a device, FIFO or socket?)")
    if status.st_size >= PROTOBUF_LIMIT:
        raise ImportFailure(f"{shown}: over 2 GiB, more than protobuf can hold in one file")


def _the_input(proto) -> tuple[str, bool]:
    """The graph's one data input (initialisers listed as inputs aside): its name, and whether
    its batch is symbolic; its batch becomes ANALYSIS_BATCH."""
    initialised = {t.name for t in proto.graph.initializer}
    inputs = [v for v in proto.graph.input if v.name not in initialised]
    if len(inputs) != 1:
        raise Unsupported(
            f"the model has {len(inputs)} inputs; the language's models read exactly one"
        )
    (value,) = inputs
    tensor = value.type.tensor_type
    if tensor.elem_type not in FLOAT_TYPES:
        raise Unsupported(f"input '{visible(value.name)}' is not a floating-point tensor")
    dims = tensor.shape.dim
    if len(dims) not in (2, 4):
        raise Unsupported(
            f"input '{visible(value.name)}' has rank {len(dims)}: the language reads a batch of"
            " C x H x W maps (rank 4) or of feature vectors (rank 2)"
        )
    if any(not d.HasField("dim_value") for d in dims[1:]):
        raise Unsupported(
            f"input '{visible(value.name)}' has symbolic sizes besides the batch: the language "
            "needs the size of every map (export with a fixed input size)"
        )
    symbolic = not dims[0].HasField("dim_value")
    dims[0].Clear()
    dims[0].dim_value = ANALYSIS_BATCH
    return value.name, symbolic


def _the_output(proto) -> str:
    """The graph's one output."""
    if len(proto.graph.output) != 1:
        raise Unsupported(
            f"the model has {len(proto.graph.output)} outputs; a spec's model has exactly one"
        )
    return proto.graph.output[0].name


def static_shapes(proto) -> dict[str, tuple[int, ...]]:
    """{value name: dims} of every value whose shape inference found all dims."""
    values = [*proto.graph.input, *proto.graph.value_info, *proto.graph.output]
    shapes = {}
    for value in values:
        tensor = value.type.tensor_type
        if tensor.HasField("shape") and all(d.HasField("dim_value") for d in tensor.shape.dim):
            shapes[value.name] = tuple(d.dim_value for d in tensor.shape.dim)
    return shapes
