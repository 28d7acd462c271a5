"""Kernels per forward + backward of nn.LocalResponseNorm against the runtime's FusedLRN.

Counted with torch.profiler on the CPU, as a proxy for the kernels a GPU would launch: the
aten ops that work on tensor data, i.e. ops with no such op below them (a composite op's work
is its children's), that are not views, allocations or dtype queries, and that read or write
a tensor of more than one element (not the 0-d scalars the CPU wraps a Python number in).
Also the milliseconds per forward + backward, the two alternating, and the output dtype
under bf16 autocast (the input in bf16, as a conv's output is there).

    PYTHONPATH=$PWD .venv/bin/python bench/lrn_kernels.py [--batch 8] [--repeats 10]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from pathlib import Path

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

RUNTIME_LRN = Path(__file__).resolve().parents[1] / "backends" / "torch" / "runtime" / "lrn.py"

# ops that only view, allocate, query or dispatch: no kernel of their own
NO_KERNEL = {
    "aten::empty",
    "aten::empty_like",
    "aten::empty_strided",
    "aten::view",
    "aten::reshape",
    "aten::as_strided",
    "aten::as_strided_",
    "aten::slice",
    "aten::narrow",
    "aten::squeeze",
    "aten::unsqueeze",
    "aten::expand",
    "aten::permute",
    "aten::transpose",
    "aten::t",
    "aten::alias",
    "aten::detach",
    "aten::detach_",
    "aten::lift_fresh",
    "aten::resize_",
    "aten::resize_as_",
    "aten::result_type",
    "aten::to",
    "aten::_nnpack_available",
}
# the paper's settings (size 5, alpha 1e-4 not divided by size) and AlexNet's two LRN inputs
SIZE, ALPHA, BETA, K = 5, 1e-4, 0.75, 2.0
LAYERS = {"conv1": (96, 55), "conv2": (256, 27)}


def fused_lrn_class() -> type:
    """The runtime's FusedLRN, imported by path (its folder is not put on sys.path)."""
    spec = importlib.util.spec_from_file_location("runtime_lrn", RUNTIME_LRN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.FusedLRN


def modules(channels: int) -> dict[str, nn.Module]:
    """nn.LocalResponseNorm and FusedLRN with the paper's settings (torch's alpha * size)."""
    return {
        "nn.LocalResponseNorm": nn.LocalResponseNorm(SIZE, ALPHA * SIZE, BETA, K),
        "FusedLRN": fused_lrn_class()(SIZE, ALPHA * SIZE, BETA, K, channels=channels),
    }


def _does_work(event) -> bool:
    """An aten op on tensor data that no view, allocation or 0-d scalar copy explains."""
    if not event.name.startswith("aten::") or event.name in NO_KERNEL:
        return False
    return any(_elements(shape) > 1 for shape in event.input_shapes)


def _elements(shape) -> int:
    """Elements of a recorded input shape (a scalar's shape is [])."""
    return 0 if not isinstance(shape, list | tuple) else max(1, _product(shape))


def _product(dims) -> int:
    """The product of dims that are ints (a tensor list's shape records nested lists)."""
    total = 1
    for d in dims:
        total *= d if isinstance(d, int) else 1
    return total


def kernels(module: nn.Module, x: torch.Tensor) -> list[str]:
    """The names of the ops doing work in one forward + backward of module on x."""
    x, grad = x.detach().clone().requires_grad_(), torch.ones_like(x)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        module(x).backward(grad)
    working = [e for e in prof.events() if _does_work(e)]
    inner = [e for e in working if not any(_does_work(c) for c in _below(e))]
    return sorted(e.name for e in inner)


def _below(event):
    """Every event under `event`."""
    for child in event.cpu_children:
        yield child
        yield from _below(child)


def milliseconds(runs: dict[str, nn.Module], x: torch.Tensor, repeats: int) -> dict:
    """Median ms per forward + backward of each module, the modules alternating."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    grad = torch.ones_like(x)
    for _ in range(repeats + 2):  # the first two are warm-up
        for name, module in runs.items():
            xi = x.detach().clone().requires_grad_()
            start = time.perf_counter()
            module(xi).backward(grad)
            times[name].append((time.perf_counter() - start) * 1e3)
    return {name: statistics.median(t[2:]) for name, t in times.items()}


def autocast_dtype(module: nn.Module, x: torch.Tensor) -> torch.dtype:
    """The output dtype on a bf16 input under CPU bf16 autocast."""
    with torch.autocast("cpu", dtype=torch.bfloat16):
        return module(x.bfloat16()).dtype


def main() -> None:
    """Print kernels, ms and the autocast dtype per LRN of AlexNet."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--repeats", type=int, default=10)
    args = p.parse_args()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}")
    for layer, (channels, side) in LAYERS.items():
        x = torch.randn(args.batch, channels, side, side).relu() * 10
        runs = modules(channels)
        ms = milliseconds(runs, x, args.repeats)
        for name, module in runs.items():
            count = len(kernels(module, x))
            dtype = autocast_dtype(module, x)
            print(f"{layer} {name:22s} {count:3d} kernels  {ms[name]:8.2f} ms  bf16 -> {dtype}")


if __name__ == "__main__":
    main()
