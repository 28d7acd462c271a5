"""A torch.profiler summary of one train step of the generated AlexNet (specs/alexnet.arch).

The step is bench/torch_vs_reference.py's (zero_grad, forward under autocast, cross-entropy,
backward, the spec's own optimizer: build_optimizer()) on seeded random batches, profiled
after --warmup steps. On CUDA it counts the kernels the step launches and their time on the
device; on the CPU (a proxy) the aten ops doing work, as bench/lrn_kernels.py counts them.
Prints the profiler's table (--rows ops by self time) and one line starting `profile:`;
--trace writes the Chrome trace (chrome://tracing, ui.perfetto.dev).

    PYTHONPATH=$PWD .venv/bin/python bench/gpu_profile_step.py --device cuda --amp --channels-last
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path

import torch
from harness import ROOT, generated_model_module
from lrn_kernels import _below, _does_work
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile
from torch_vs_reference import Runner, make_batches, prepare, synchronize

SPEC = ROOT / "specs" / "alexnet.arch"
NOT_KERNELS = ("Memcpy", "Memset")  # device events that are copies or fills


def parse_args(argv=None):
    """Command-line flags."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--batch", type=int, default=None, help="default: 8 on cpu, 128 on cuda")
    p.add_argument("--warmup", type=int, default=5, help="steps before the profiled one")
    p.add_argument("--amp", action="store_true", help="bf16 autocast")
    p.add_argument("--channels-last", action="store_true", help="NHWC model and input")
    p.add_argument("--rows", type=int, default=15, help="rows of the profiler's table")
    p.add_argument("--trace", type=Path, help="write the Chrome trace here")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    args.batch = args.batch or (128 if args.device == "cuda" else 8)
    args.batches = 2  # make_batches' count of distinct batches
    return args


def build_runner(module, args, device, memory_format):
    """The generated AlexNet and its spec's optimizer on device, as a Runner."""
    torch.manual_seed(args.seed)
    model = prepare(module.build_model(), device, memory_format)
    amp_dtype = torch.bfloat16 if args.amp else None
    return Runner(model, module.build_optimizer(model), device, amp_dtype)


def profiled_step(runner, batches, args, device):
    """(profiler, wall ms) of one step after args.warmup unprofiled ones."""
    for i in range(args.warmup):
        runner.step(*batches[i % len(batches)])
    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    synchronize(device)
    with profile(activities=activities, record_shapes=device.type == "cpu") as prof:
        start = time.perf_counter()
        runner.step(*batches[args.warmup % len(batches)])
        synchronize(device)
        wall = (time.perf_counter() - start) * 1e3
    return prof, wall


def cuda_summary(prof) -> tuple[str, str]:
    """(count and device time of the kernels, the five longest kernels by total time)."""
    events = [e for e in prof.events() if e.device_type == DeviceType.CUDA]
    kernels = [e for e in events if not e.name.startswith(NOT_KERNELS)]
    copies = len(events) - len(kernels)
    total = collections.Counter()
    for e in kernels:
        total[e.name] += e.time_range.elapsed_us()
    busy = sum(total.values()) / 1e3
    top = ", ".join(f"{name[:48]} {us / 1e3:.2f} ms" for name, us in total.most_common(5))
    return f"{len(kernels)} kernels ({busy:.2f} ms on the GPU), {copies} copies/fills", top


def cpu_summary(prof) -> tuple[str, str]:
    """(count of the aten ops doing work, the five most frequent of them)."""
    working = [e for e in prof.events() if _does_work(e)]
    inner = [e.name for e in working if not any(_does_work(c) for c in _below(e))]
    top = ", ".join(f"{n} x{k}" for n, k in collections.Counter(inner).most_common(5))
    return f"{len(inner)} working aten ops (the CPU's proxy for kernels)", top


def main() -> None:
    """Profile one step; print the table and the `profile:` line."""
    args = parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device visible to torch")
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    with tempfile.TemporaryDirectory() as tmp:
        module = generated_model_module(SPEC, "torch", Path(tmp))
        runner = build_runner(module, args, device, memory_format)
        batches = make_batches(module.INPUT_SHAPE, module.NUM_CLASSES, args, device, memory_format)
        prof, wall = profiled_step(runner, batches, args, device)
    sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    print(prof.key_averages().table(sort_by=sort, row_limit=args.rows))
    if args.trace:
        prof.export_chrome_trace(str(args.trace))
    count, top = (cuda_summary if device.type == "cuda" else cpu_summary)(prof)
    precision = "bf16 autocast" if args.amp else "float32"
    layout = "channels_last" if args.channels_last else "NCHW"
    optimizer = type(runner.optimizer).__name__
    print(
        f"profile: AlexNet (specs/alexnet.arch) on {device.type}, batch {args.batch}, "
        f"{precision}, {layout}, {optimizer}, torch {torch.__version__}: one step "
        f"{wall:.1f} ms wall (profiled), {count}; top: {top}"
    )


if __name__ == "__main__":
    main()
