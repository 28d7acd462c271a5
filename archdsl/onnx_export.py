"""`archdsl export --onnx`: the spec's generated PyTorch model through torch.onnx.export.

Only `archdsl export` imports this module, and it imports torch and onnx inside its functions:
the compile path never loads them. The model is the one `archdsl compile` writes, compiled into
a temporary folder and imported from there; the ONNX graph computes what its `predict` does.
"""

from __future__ import annotations

import contextlib
import functools
import io
import tempfile
from dataclasses import dataclass
from pathlib import Path

from archdsl import targets
from archdsl.backends.common.metrics_log import atomic_write
from archdsl.compiler import Checked
from archdsl.emit import write_output
from archdsl.generated import import_model
from archdsl.quiet import quiet
from archdsl.shapes import trailing_softmax

DEFAULT_OPSET = 17  # the first with LayerNormalization; read by every current runtime
OPSETS = range(9, 21)  # what torch.onnx's TorchScript exporter writes (7 and 8 break)
INPUT, OUTPUT, BATCH = "input", "output", "batch"
OWNER_KEY = "archdsl.spec"  # metadata of every file `export` writes: it may overwrite those
PROTOBUF_LIMIT = 2**31  # bytes; protobuf cannot read a larger file


class ExportError(Exception):
    """The model cannot be exported, checked or written (a one-line message)."""


@dataclass
class Exported:
    """An exported, checked ONNX model and the dims of its input and output."""

    proto: object  # onnx.ModelProto
    opset: int
    input_dims: list
    output_dims: list
    softmax: bool  # the output is the spec's trailing softmax (probabilities), not logits


def export_spec(checked: Checked, weights: Path | None, opset: int | None, dynamic_batch: bool):
    """The spec's model (with `weights`, else freshly initialised) as a checked ONNX model."""
    opset = DEFAULT_OPSET if opset is None else opset
    if opset not in OPSETS:
        raise ExportError(f"--opset {opset}: expected {OPSETS[0]} to {OPSETS[-1]}")
    if weights is not None and not weights.is_file():
        problem = "not a regular file" if weights.exists() else "no such file"
        raise ExportError(f"{weights}: {problem}")
    module = compiled_module(checked)
    model = initial_model(module, weights)
    exported = export_model(module, model, trailing_softmax(checked.graph), opset, dynamic_batch)
    _label(exported.proto, checked, module.MODEL_NAME)
    return exported


def compiled_module(checked: Checked):
    """The spec's generated PyTorch model.py, compiled into a temporary folder and imported."""
    with tempfile.TemporaryDirectory(prefix="archdsl-export-") as folder:
        write_output(checked, "torch", Path(folder), force=True)
        return import_model(Path(folder))


def initial_model(module, weights: Path | None):
    """module.build_model() with `weights` loaded, or seeded (one file per spec) without."""
    import torch

    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = module.build_model()
    if weights is not None:
        try:
            module.load_weights(model, weights)
        except (ValueError, OSError) as exc:  # WeightsError is a ValueError
            raise ExportError(str(exc).splitlines()[0]) from None
    return model


def export_model(module, model, softmax: bool, opset: int, dynamic_batch: bool) -> Exported:
    """`model` (built by the generated `module`) as a checked ONNX model computing what
    module.predict does: eval mode, and the spec's trailing softmax when it has one."""
    ids = hasattr(module, "INPUT_VOCAB")
    proto = checked_model(
        to_onnx(model, softmax, module.INPUT_SHAPE, opset, dynamic_batch, token_ids=ids)
    )
    batch = BATCH if dynamic_batch else 1
    input_dims, output_dims = _dims(proto.graph.input[0]), _dims(proto.graph.output[0])
    if output_dims != [batch, *module.OUTPUT_SHAPE]:
        raise ExportError(
            f"shape inference gives the output {output_dims}, where the spec says "
            f"{[batch, *module.OUTPUT_SHAPE]}: please report this as a bug"
        )
    return Exported(proto, opset, input_dims, output_dims, softmax)


def to_onnx(
    model, softmax: bool, input_shape, opset: int, dynamic_batch: bool, token_ids: bool = False
) -> bytes:
    """The serialised ONNX graph of `model` in eval mode, then a softmax if `softmax`
    (TorchScript exporter: see the README for why); `token_ids`: the input is int64 ids."""
    import torch

    model.eval()
    net = torch.nn.Sequential(model, torch.nn.Softmax(dim=1)) if softmax else model
    batch = 2 if dynamic_batch else 1
    example = (
        torch.ones(batch, *input_shape, dtype=torch.int64)  # real tokens, no padding
        if token_ids
        else torch.zeros(batch, *input_shape)
    )
    axes = {INPUT: {0: BATCH}, OUTPUT: {0: BATCH}} if dynamic_batch else None
    buffer = io.BytesIO()
    with _exportable(net):
        try:
            with quiet():
                torch.onnx.export(
                    net,
                    (example,),
                    buffer,
                    dynamo=False,
                    opset_version=opset,
                    input_names=[INPUT],
                    output_names=[OUTPUT],
                    dynamic_axes=axes,
                )
        except Exception as exc:  # the exporter raises many kinds; each becomes one line
            raise ExportError(_failure(model, net, example, opset, exc)) from None
    return buffer.getvalue()


@contextlib.contextmanager
def _exportable(net):
    """While exporting, run the modules the exporter cannot take as equivalent plain ops:
    nn.ChannelShuffle (no aten::channel_shuffle at any opset) as reshapes and a transpose,
    as torchvision's ShuffleNet does; nn.AdaptiveAvgPool2d of other sizes than 1 x 1 (which
    needs sizes its shape inference loses after an LRN, and bins that tile) as means over
    PyTorch's bins; the runtime's FusedLRN (a banded 1 x 1 convolution) as the
    nn.LocalResponseNorm it subclasses, whose graph `archdsl import` reads back as an lrn.
    The modules get their own forward back afterwards."""
    import torch

    patched = []
    for module in net.modules():
        if isinstance(module, torch.nn.LocalResponseNorm):
            patched.append(module)
            module.forward = functools.partial(torch.nn.LocalResponseNorm.forward, module)
        elif isinstance(module, torch.nn.RNNBase) and getattr(module, "takes_mask", False):
            patched.append(module)
            module.forward = functools.partial(_unpacked_recurrent, module)
        elif isinstance(module, torch.nn.ChannelShuffle):
            patched.append(module)
            module.forward = functools.partial(_channel_shuffle, groups=module.groups)
        elif isinstance(module, torch.nn.AdaptiveAvgPool2d) and module.output_size not in (
            1,
            (1, 1),
        ):
            patched.append(module)
            module.forward = functools.partial(_adaptive_avgpool, size=module.output_size)
    try:
        yield
    finally:
        for module in patched:
            del module.forward  # the class's own forward again


def _unpacked_recurrent(module, x, mask=None):
    """A SequenceLSTM / SequenceGRU without packed sequences, which the exporter cannot
    trace: the layer runs over every position, and as padding only ends a text, its
    outputs before the padding are the packed run's; the last state is read at each
    text's last real token. The backward direction would start in the padding: refused."""
    import torch

    base = next(c for c in type(module).__mro__ if c in (torch.nn.LSTM, torch.nn.GRU))
    if mask is None:
        return type(module).forward(module, x)
    if module.bidirectional:
        kind = "lstm" if base is torch.nn.LSTM else "gru"
        raise ExportError(
            f"a bidirectional {kind} that skips padding has no export: its backward direction "
            "starts at each text's last real token, which needs packed sequences (export it "
            "without `padding=` on the embedding, or unidirectional)"
        )
    out = base.forward(module, x)[0] * mask.unsqueeze(-1).to(x.dtype)
    if module.sequences:
        return out
    lengths = mask.sum(dim=1)
    last = out[torch.arange(out.shape[0]), (lengths - 1).clamp(min=0)]
    return last * (lengths > 0).unsqueeze(-1).to(x.dtype)


def _channel_shuffle(x, groups: int):
    """x (N, C, ...) with its channels read as a groups x C / groups matrix, transposed."""
    c, *rest = (int(d) for d in x.shape[1:])  # constants: only the batch may vary
    return x.reshape(-1, groups, c // groups, *rest).transpose(1, 2).reshape(-1, c, *rest)


def _adaptive_avgpool(x, size):
    """PyTorch's adaptive average pooling of x (N, C, H, W) to `size`: bin i of n over an
    axis of length L is [floor(i L / n), ceil((i + 1) L / n)), averaged rows then columns."""
    import torch

    for axis, n in zip((2, 3), (size, size) if isinstance(size, int) else size, strict=True):
        length = int(x.shape[axis])
        n = length if n is None else n
        bins = [(i * length // n, -(-(i + 1) * length // n)) for i in range(n)]
        x = torch.cat([x.narrow(axis, a, b - a).mean(axis, keepdim=True) for a, b in bins], axis)
    return x


def _failure(model, net, example, opset: int, exc: Exception) -> str:
    """The message for a failed export: the layer that cannot export, and torch's reason."""
    reason = _first_line(exc)
    layer = _failing_layer(model, net, example, opset)
    where = f"layer {layer}" if layer else "the model"
    return f"cannot export {where} to ONNX opset {opset}: {reason}"


def _first_line(exc: Exception) -> str:
    """The first line of an exception's message, without torch's request for pull requests."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text.split(" Please feel free to request support")[0].rstrip(". ")


def _failing_layer(model, net, example, opset: int) -> str | None:
    """`name (op)` of the first leaf module of `model` (or module with tensors of its own
    beside its children: an attention layer), in the order `net` calls them, that cannot
    export on its own."""
    import torch

    calls: dict = {}

    def record(module, args, _output) -> None:
        """Keep a leaf module's first inputs (returning None keeps its output)."""
        calls.setdefault(module, args)

    leaves = [
        m
        for m in model.modules()
        if not any(m.children()) or any(True for _ in m.parameters(recurse=False))
    ]
    hooks = [m.register_forward_hook(record) for m in leaves]
    try:
        with torch.no_grad():
            net(example)
    except Exception:  # the forward itself fails: the exporter's message says why
        return None
    finally:
        for hook in hooks:
            hook.remove()
    names = {m: name for name, m in model.named_modules()}
    for module, args in calls.items():
        try:
            with quiet():
                # called through a container, as in the model: its patched forward runs
                wrapped = torch.nn.Sequential(module)
                torch.onnx.export(wrapped, args, io.BytesIO(), dynamo=False, opset_version=opset)
        except Exception:
            return f"{names[module]} ({type(module).__name__})"
    return None


def checked_model(data: bytes):
    """The parsed model, after onnx's full check and strict shape inference (which it keeps)."""
    import onnx

    if len(data) >= PROTOBUF_LIMIT:
        raise ExportError("the ONNX model is over 2 GiB, more than protobuf can hold in one file")
    proto = onnx.load_from_string(data)
    try:
        onnx.checker.check_model(proto, full_check=True)
        return onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ExportError(f"the exported model fails onnx's check: {_first_line(exc)}") from None


def _label(proto, checked: Checked, model_name: str) -> None:
    """Record in the model which spec it came from (what tells `export` the file is its own)."""
    proto.doc_string = f"{model_name}, exported by archdsl from {Path(checked.file).name}"
    entry = proto.metadata_props.add()
    entry.key, entry.value = OWNER_KEY, Path(checked.file).name


def _dims(value) -> list:
    """The dims of a graph input or output: ints, or the name of a symbolic one."""
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


def check_target(out: Path, force: bool) -> None:
    """ExportError unless `out` is absent, an ONNX file `export` wrote, or --force allows it."""
    try:
        targets.check_target(out, force, _written_by_archdsl, ".onnx file", "export")
    except targets.TargetError as exc:
        raise ExportError(str(exc)) from None


def _written_by_archdsl(path: Path) -> bool:
    """True for an ONNX file whose metadata names the spec it was exported from."""
    import onnx

    if path.stat().st_size >= PROTOBUF_LIMIT:
        return False
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception:  # not protobuf, or not a model: not ours
        return False
    return any(p.key == OWNER_KEY for p in proto.metadata_props)


def write_model(proto, out: Path) -> None:
    """Write the model atomically (a symbolic link at `out` is replaced, never followed)."""
    try:
        atomic_write(out, lambda f: f.write(proto.SerializeToString()))
    except OSError as exc:
        raise ExportError(f"{out}: cannot write the model here: {exc.strerror or exc}") from None
