"""Helpers of the ONNX import tests: export a spec or a torch module, import it back, compare."""

import warnings

import numpy as np
import onnx
import torch
from onnx_helpers import assert_close, compiled, random_model, run_onnx

from archdsl.compiler import check_source
from archdsl.onnx_export import DEFAULT_OPSET, compiled_module, to_onnx
from archdsl.onnx_import.importer import import_onnx
from archdsl.shapes import trailing_softmax


def exported_spec(path, folder):
    """The spec's PyTorch model with random weights and statistics, exported to ONNX with a
    symbolic batch by the exporter `archdsl export --dynamic-batch` runs (without the checks
    it adds, which the import repeats): the file's path."""
    checked, module = compiled(path)
    model = random_model(module)
    softmax = trailing_softmax(checked.graph)
    out = folder / f"{path.stem}.onnx"
    ids = hasattr(module, "INPUT_VOCAB")  # a text spec reads int64 token ids
    onnx_bytes = to_onnx(
        model, softmax, module.INPUT_SHAPE, DEFAULT_OPSET, dynamic_batch=True, token_ids=ids
    )
    out.write_bytes(onnx_bytes)
    return out


def exported_module(net, input_shape, folder, name, **options):
    """A torch module (eval mode, BN statistics redrawn) exported by torch.onnx.export."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for key, tensor in net.state_dict().items():
            if key.endswith(("running_mean", "bias")):
                tensor.copy_(torch.randn(tensor.shape, generator=gen) * 0.2)
            elif key.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=gen) + 0.5)
    net.eval()
    out = folder / f"{name}.onnx"
    example = torch.zeros(1, *input_shape)
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation notices
        warnings.simplefilter("ignore", DeprecationWarning)
        _export(net, example, out, options)
    return out


def _export(net, example, out, options) -> None:
    """torch.onnx.export (TorchScript) with a symbolic batch, input `input`, output `output`."""
    torch.onnx.export(
        net,
        (example,),
        str(out),
        dynamo=False,
        input_names=["input"],
        output_names=["output"],
        dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
        **options,
    )


def onnx_output_dims(path):
    """The per-example dims of the model's output, as onnx's shape inference gives them."""
    proto = onnx.shape_inference.infer_shapes(onnx.load(str(path)), strict_mode=True)
    return tuple(d.dim_value for d in proto.graph.output[0].type.tensor_type.shape.dim[1:])


def imported_model(path):
    """(the checked imported spec, its PyTorch module, the model with the imported weights)."""
    imported = import_onnx(path, f"{path.stem}.arch", f"{path.stem}.npz")
    checked = check_source(imported.text, f"{path.stem}.arch")
    assert checked.ok, [d.message for d in checked.diagnostics if d.severity == "error"]
    module = compiled_module(checked)
    model = module.build_model()
    module.load_weights.__globals__["load_arrays"](model, imported.arrays)  # the runtime's
    return imported, checked, module, model


def assert_round_trip(path, batch=2, seed=1):
    """Import `path`; the spec checks, every statement has an `expect` (so `check` compared
    each statement's shape with ONNX's), its output shape is ONNX's, and the compiled PyTorch
    model with the imported weights computes onnxruntime's outputs. Returns the Imported."""
    imported, checked, module, model = imported_model(path)
    statements = checked.graph.statements
    assert all(" expect " in line for line in imported.text.splitlines() if " = " in line)
    assert tuple(checked.report.outputs[checked.graph.output]) == onnx_output_dims(path)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, *module.INPUT_SHAPE, generator=gen)
    assert_close(module.predict(model, x).numpy(), run_onnx(path, x))
    assert len(statements) == imported.statements
    return imported


def initialiser_values(path):
    """Every initialiser and Constant tensor of an ONNX file, as float32 arrays."""
    proto = onnx.load(str(path))
    arrays = [onnx.numpy_helper.to_array(t) for t in proto.graph.initializer]
    for node in proto.graph.node:
        for a in node.attribute:
            if a.name == "value" and a.type == onnx.AttributeProto.TENSOR:
                arrays.append(onnx.numpy_helper.to_array(a.t))
    return [np.asarray(a, np.float32) for a in arrays if a.dtype.kind == "f"]
