"""The PyTorch driver of the fuzzer: `python -m difffuzz.torch_side` (see drivers.py).

Tasks (each writes into its "dir", which holds the compiled model in dir/torch):
  infer    build the model, calibrate it as the conformance driver does
           (torch_driver.calibrate: every conv / dense output at std 8, batch norms with random
           statistics; a spec where some conv or dense output is constant over the batch is
           reported degenerate), save the portable weights (dir/weights.npz), random inputs
           (dir/inputs.npz, one array per input), the eval-mode output (dir/torch_out.npz) and
           every statement's output (dir/torch_statements.npz); load the file back into a fresh
           model (the same output); count the parameters; run that model in float64 too: how
           far float32 rounding moves each output (the spec's "noise", relative) bounds how
           closely two float32 implementations can agree.
  reverse  load the weights Keras changed and saved (dir/keras_changed.npz) and write the
           eval-mode output (dir/torch_reverse_out.npz).
"""

from pathlib import Path

import conform
import numpy as np
import torch
import torch_driver
from torch import nn

from difffuzz import drivers

STATISTICS = ("running_mean", "running_var")
# examples per spec: more than conform.BATCH, so that a saturated tanh or sigmoid before a
# dense layer rarely leaves it a constant output, which calibration cannot rescale
BATCH = 4


class Packed(nn.Module):
    """A model of several inputs called with one tuple (as calibrate and statement_outputs
    call theirs): the model's statements are its children, so their hooks see every call."""

    def __init__(self, model: nn.Module):
        """Wrap `model`, whose statements become this module's children."""
        super().__init__()
        for name, child in model.named_children():
            self.add_module(name, child)
        self.__dict__["model"] = model  # not a child: its children are ours already

    def forward(self, inputs):
        """The model on the tuple of its inputs."""
        return self.model(*inputs)


def counts(module: nn.Module) -> tuple[int, int]:
    """(trainable parameters, running statistics) of a module."""
    trainable = sum(p.numel() for p in module.parameters())
    frozen = sum(b.numel() for n, b in module.named_buffers() if n.endswith(STATISTICS))
    return trainable, frozen


def inputs_of(task, rng) -> list:
    """Random BATCH x shape inputs, one per model input, in the model's order."""
    return [
        torch.from_numpy(rng.standard_normal((BATCH, *shape)).astype(np.float32))
        for _, shape in task["inputs"]
    ]


def infer(task):
    """The infer task (see the module's docstring)."""
    directory = Path(task["dir"])
    m = conform.import_model(directory / "torch")
    torch.manual_seed(conform.SEED)
    rng = np.random.default_rng(conform.SEED)
    model = m.build_model().eval()
    packed = Packed(model)
    xs = inputs_of(task, rng)
    try:
        torch_driver.calibrate(packed, xs, rng)
    except ZeroDivisionError:  # calibrate divides by the spread of each layer's output
        return {"degenerate": "a conv or dense output is constant over the batch"}
    m.save_weights(model, directory / "weights.npz")
    output, statements = torch_driver.statement_outputs(packed, xs)
    again = m.build_model().eval()
    m.load_weights(again, directory / "weights.npz")
    with torch.no_grad():
        reloaded = again(*xs).numpy()
    exact = [x.double() for x in xs]
    output64, statements64 = torch_driver.statement_outputs(Packed(again.double()), exact)
    names = [name for name, _ in task["inputs"]]
    np.savez(directory / "inputs.npz", **{n: x.numpy() for n, x in zip(names, xs, strict=True)})
    np.savez(directory / "torch_out.npz", output=output)
    np.savez(directory / "torch_statements.npz", **statements)
    trainable, frozen = counts(model)
    return {
        "trainable": trainable,
        "frozen": frozen,
        "statement_params": {
            n: sum(counts(c)) for n, c in torch_driver.statement_modules(model).items()
        },
        "reload": conform.diff(reloaded, output),
        "noise": {
            "output": conform.diff(output, output64)[1],
            "statements": {n: conform.diff(v, statements64[n])[1] for n, v in statements.items()},
        },
    }


def reverse(task):
    """The reverse task (see the module's docstring)."""
    directory = Path(task["dir"])
    m = conform.import_model(directory / "torch")
    model = m.build_model().eval()
    m.load_weights(model, directory / "keras_changed.npz")
    with np.load(directory / "inputs.npz") as data:
        xs = [torch.from_numpy(data[name]) for name, _ in task["inputs"]]
    with torch.no_grad():
        np.savez(directory / "torch_reverse_out.npz", output=model(*xs).numpy())
    return {}


if __name__ == "__main__":
    drivers.serve("torch", {"infer": infer, "reverse": reverse})
