"""Helpers of the ONNX export tests: random weights, running an ONNX model, the comparison."""

import numpy as np
import torch

from archdsl.compiler import check_source
from archdsl.onnx_export import compiled_module

TOLERANCE = 1e-5  # relative to the largest output


def checked_file(path):
    """Check a spec file; fail the test on any error."""
    checked = check_source(path.read_text(encoding="utf-8"), str(path))
    assert checked.ok, [d.message for d in checked.diagnostics if d.severity == "error"]
    return checked


def random_model(module, seed=0):
    """module.build_model() with every 1-D tensor redrawn (batch-norm statistics, scales,
    biases), so that no normalisation or layer scale is an identity and no bias is zero."""
    gen = torch.Generator().manual_seed(seed)
    model = module.build_model()
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.dim() != 1 or not tensor.is_floating_point():
                continue  # weights keep their (seeded) initialisation; counters stay
            leaf = name.rsplit(".", 1)[-1]
            if leaf in ("running_var", "weight", "scale"):
                tensor.copy_(torch.rand(tensor.shape, generator=gen) + 0.5)
            else:  # running_mean, bias
                tensor.copy_(torch.randn(tensor.shape, generator=gen) * 0.2)
    return model


def random_input(module, batch, seed=1):
    """A batch of standard-normal inputs of the spec's input shape (token ids below the
    vocabulary's size for a text model)."""
    gen = torch.Generator().manual_seed(seed)
    if hasattr(module, "INPUT_VOCAB"):
        return torch.randint(module.INPUT_VOCAB, (batch, *module.INPUT_SHAPE), generator=gen)
    return torch.randn(batch, *module.INPUT_SHAPE, generator=gen)


def run_onnx(model_bytes_or_path, x):
    """onnxruntime's output for the input batch x (CPU)."""
    import onnxruntime

    source = model_bytes_or_path
    if not isinstance(source, bytes):
        source = str(source)
    session = onnxruntime.InferenceSession(source, providers=["CPUExecutionProvider"])
    (name,) = [i.name for i in session.get_inputs()]
    return session.run(None, {name: x.numpy()})[0]


def assert_close(got, want):
    """Equal to TOLERANCE relative to the largest output, and of the same shape."""
    want = np.asarray(want)
    assert got.shape == want.shape
    scale = np.abs(want).max()
    assert scale > 0
    error = np.abs(got - want).max()
    assert error <= TOLERANCE * scale, f"max |onnx - torch| = {error:.3g}, scale {scale:.3g}"


def compiled(path):
    """(checked spec, its imported generated module)."""
    checked = checked_file(path)
    return checked, compiled_module(checked)
