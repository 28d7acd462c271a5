"""The PyTorch half of the zoo's weight-exchange test, run in its own process (torch and
TensorFlow crash together here): `python torch_reference.py SPEC DIR`.

Compiles SPEC for PyTorch into DIR/torch, builds it with the spec's initialisation, gives every
batch norm random running statistics and affine parameters, and every conv/dense bias, layer-norm
scale and shift and layer scale, and every tensor still all zeros (ViT's class token, attention
biases and head) a random value (so that the exchange must carry each of them),
then writes DIR/weights.npz (the generated model's save_weights), DIR/inputs.npz (x: N, C, H, W)
and DIR/torch_out.npz (eval-mode outputs).
"""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import torch

from archdsl.compiler import check_source
from archdsl.emit import write_output

BATCH = 2


def main(spec, directory):
    spec, directory = Path(spec), Path(directory)
    checked = check_source(spec.read_text(encoding="utf-8"), str(spec))
    assert checked.ok, [d.message for d in checked.diagnostics]
    code = directory / "torch"
    write_output(checked, "torch", code, force=True)
    sys.path.insert(0, str(code))
    module_spec = importlib.util.spec_from_file_location("zoo_model", code / "model.py")
    m = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(m)
    torch.manual_seed(0)
    model = m.build_model()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d):
                n = module.num_features
                module.running_mean.copy_(torch.randn(n, generator=gen) * 0.2)
                module.running_var.copy_(torch.rand(n, generator=gen) * 1.5 + 0.5)
                module.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                module.bias.copy_(torch.randn(n, generator=gen) * 0.2)
            elif isinstance(module, torch.nn.Conv2d | torch.nn.Linear) and module.bias is not None:
                module.bias.copy_(torch.randn(module.bias.shape, generator=gen) * 0.05)
            elif isinstance(module, torch.nn.LayerNorm):
                module.weight.copy_(torch.rand(module.weight.shape, generator=gen) + 0.5)
                module.bias.copy_(torch.randn(module.bias.shape, generator=gen) * 0.2)
            elif type(module).__name__ == "LayerScale":  # starts at 1e-6, hiding its branch
                module.scale.copy_(torch.rand(module.scale.shape, generator=gen) + 0.5)
        for p in model.parameters():  # ViT's class token, attention biases and head: zeros
            if not p.any():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
    model.eval()
    x = torch.randn(BATCH, *m.INPUT_SHAPE, generator=gen)
    with torch.no_grad():
        out = model(x).numpy()
    m.save_weights(model, directory / "weights.npz")
    np.savez(directory / "inputs.npz", x=x.numpy())
    np.savez(directory / "torch_out.npz", out=out)


if __name__ == "__main__":
    main(*sys.argv[1:])
