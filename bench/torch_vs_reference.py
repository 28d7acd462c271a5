"""Train-step time of archdsl's generated PyTorch AlexNets against hand-written peers, one run.

Pairs, each timed on the same batches (same seeded random images and labels) with the same
optimizer, the two models' steps alternating (A B A B ...) so that drift hits both alike:
  (a) specs/variants/torchvision_alexnet.arch  vs  torchvision.models.alexnet(weights=None)
  (b) specs/alexnet.arch                       vs  bench/handwritten_alexnet.py (the paper's net)
  (r) specs/zoo/resnet18.arch (a Basic class per block, nn.Sequential stages)
                                               vs  torchvision.models.resnet18(weights=None)
  (v) specs/zoo/vit_b_16.arch (scaled_dot_product_attention in an EncoderLayer class per layer)
                                               vs  torchvision.models.vit_b_16(weights=None)
A step is zero_grad + forward + cross-entropy + backward + optimizer step; ms/step is the
median over --steps after --warmup. Both models of a pair start from the same weights (the
reference gets a copy of the generated model's) and draw the same dropout masks, so they compute
on the same numbers. The ratio is the median of the per-step ratios generated / reference (steps
i of both ran back to back; see harness.report); target <= 1.02. A last section (c) times the
generated optimizer's step alone (PaperSGD, the paper's rule) against torch.optim.SGD with the
same weight decay, on the same gradients. --control first times an A/A pair (the hand-written
model against a second instance of itself): its distance from 1.000 is the noise of the run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from harness import ROOT, TARGET, generated_model_module, report

sys.path.insert(0, str(ROOT / "tests" / "torch_zoo"))  # torchvision_names: the key mapping
import torchvision_names  # noqa: E402
from handwritten_alexnet import PARAMETERS as PAPER_PARAMETERS
from handwritten_alexnet import AlexNet as HandwrittenAlexNet
from torch import nn


def parameter_count(model: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def copy_weights(source: nn.Module, target: nn.Module) -> None:
    """Copy parameters in registration order (same layers, same shapes, different names)."""
    src, dst = list(source.parameters()), list(target.parameters())
    assert len(src) == len(dst), (len(src), len(dst))
    with torch.no_grad():
        for p, q in zip(src, dst, strict=True):
            assert p.shape == q.shape, (p.shape, q.shape)
            q.copy_(p)


def copy_by_rule(rule):
    """A copy from the generated model to a torchvision one whose keys `rule` maps to ours
    (tests/torch_zoo/torchvision_names.py): the same weights where registration orders differ."""

    def copy(source: nn.Module, target: nn.Module) -> None:
        ours = source.state_dict()
        state = target.state_dict()
        target.load_state_dict(
            {k: v if k.endswith("num_batches_tracked") else ours[rule(k)] for k, v in state.items()}
        )

    return copy


def make_batches(shape, num_classes, args, device, memory_format):
    """`--batches` distinct (images, labels) batches from a seeded generator, on `device`."""
    g = torch.Generator().manual_seed(args.seed)
    batches = []
    for _ in range(args.batches):
        x = torch.randn((args.batch, *shape), generator=g)
        y = torch.randint(num_classes, (args.batch,), generator=g)
        x = x.to(device).contiguous(memory_format=memory_format)
        batches.append((x, y.to(device)))
    return batches


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels (CUDA is asynchronous; the CPU is not)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Runner:
    """One model's train step: model, optimizer, autocast and (for float16) a GradScaler."""

    def __init__(self, model, optimizer, device, amp_dtype):
        self.model, self.optimizer, self.device = model, optimizer, device
        self.amp_dtype = amp_dtype
        fp16 = amp_dtype == torch.float16
        self.scaler = torch.amp.GradScaler(device.type, enabled=fp16)

    def step(self, x, y) -> None:
        """zero_grad, forward, cross-entropy, backward, optimizer step."""
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(
            self.device.type, dtype=self.amp_dtype or torch.float32, enabled=bool(self.amp_dtype)
        ):
            loss = F.cross_entropy(self.model(x), y)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()


def time_alternating(runners: dict, batches, args, device) -> dict:
    """Per-step seconds of each runner, steps alternating between them, warm-up dropped."""
    times = {name: [] for name in runners}
    for i in range(args.warmup + args.steps):
        x, y = batches[i % len(batches)]
        for name, runner in runners.items():
            torch.manual_seed(args.seed + i)  # the same dropout masks for both models
            synchronize(device)
            start = time.perf_counter()
            runner.step(x, y)
            synchronize(device)
            if i >= args.warmup:
                times[name].append(time.perf_counter() - start)
    return times


def prepare(model: nn.Module, device, memory_format) -> nn.Module:
    """Move to the device (and layout) in training mode."""
    return model.to(device=device, memory_format=memory_format).train()


def make_optimizer(module, model, args):
    """--optimizer sgd: torch.optim.SGD(lr=0.01, momentum=0.9); generated: the spec's own."""
    if args.optimizer == "generated":
        return module.build_optimizer(model)
    return torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)


def run_pair(
    title,
    module,
    spec_label,
    reference,
    ref_label,
    expect,
    args,
    device,
    fmt,
    target=TARGET,
    copy=copy_weights,
):
    """Build, check and time one generated / reference pair; returns the ratio."""
    torch.manual_seed(args.seed)
    generated = module.build_model()
    count = parameter_count(generated)
    assert count == parameter_count(reference) == expect, (
        count,
        parameter_count(reference),
        expect,
    )
    copy(generated, reference)
    models = {"generated": generated, "reference": reference}
    runners = {}
    for name, model in models.items():
        model = prepare(model, device, fmt)
        forward = torch.compile(model) if args.compile else model
        runners[name] = Runner(forward, make_optimizer(module, model, args), device, args.amp_dtype)
    optimizer = type(runners["generated"].optimizer).__name__
    shape = " x ".join(map(str, module.INPUT_SHAPE))
    print(f"{title}: input {shape}, {count:,} parameters, {optimizer} for both")
    batches = make_batches(module.INPUT_SHAPE, module.NUM_CLASSES, args, device, fmt)
    times = time_alternating(runners, batches, args, device)
    return report(times, {"generated": spec_label, "reference": ref_label}, args.batch, target)


def time_optimizers(module, args, device, fmt) -> None:
    """The generated build_optimizer()'s step alone vs torch.optim.SGD with weight decay."""
    torch.manual_seed(args.seed)
    models = {"generated": module.build_model(), "reference": HandwrittenAlexNet()}
    copy_weights(models["generated"], models["reference"])
    g = torch.Generator().manual_seed(args.seed)
    grads = [torch.randn(p.shape, generator=g) * 1e-3 for p in models["generated"].parameters()]
    decay = module.TRAIN["optimizer"]["weight_decay"]
    optimizers = {}
    for name, model in models.items():
        model = prepare(model, device, fmt)
        for p, grad in zip(model.parameters(), grads, strict=True):
            p.grad = torch.empty_like(p).copy_(grad)
        if name == "generated":
            optimizers[name] = module.build_optimizer(model)
        else:
            optimizers[name] = torch.optim.SGD(
                model.parameters(), lr=0.01, momentum=0.9, weight_decay=decay
            )
    times = {name: [] for name in optimizers}
    for i in range(args.warmup + args.steps):
        for name, optimizer in optimizers.items():
            synchronize(device)
            start = time.perf_counter()
            optimizer.step()
            synchronize(device)
            if i >= args.warmup:
                times[name].append(time.perf_counter() - start)
    labels = {
        "generated": f"build_optimizer(): {type(optimizers['generated']).__name__}",
        "reference": f"torch.optim.SGD(momentum=0.9, weight_decay={decay})",
    }
    report(times, labels, None, target=None)


def main() -> None:
    """Print ms/step, images/s and generated / reference per pair."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--batch", type=int, default=None, help="default: 8 on cpu, 128 on cuda")
    p.add_argument("--steps", type=int, default=None, help="timed steps (default 25 cpu, 50 cuda)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--batches", type=int, default=4, help="distinct batches, cycled")
    p.add_argument("--amp", action="store_true", help="autocast: bf16, or fp16 + GradScaler")
    p.add_argument("--amp-dtype", choices=("bf16", "fp16"), default="bf16")
    p.add_argument("--channels-last", action="store_true", help="NHWC models and inputs")
    p.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile both models of each pair (compiled during the warm-up steps)",
    )
    p.add_argument(
        "--optimizer",
        choices=("sgd", "generated"),
        default="sgd",
        help="sgd: torch.optim.SGD(lr=0.01, momentum=0.9) for both models of a pair;\n"
        "generated: the generated model.py's build_optimizer() for both",
    )
    p.add_argument("--pairs", default="ab", help="which pairs to run: any of a, b, r, v")
    p.add_argument("--no-optimizer-section", action="store_true")
    p.add_argument(
        "--control",
        action="store_true",
        help="first an A/A pair, two instances of bench/handwritten_alexnet.py:\n"
        "how far from 1.000 this machine's noise moves a ratio",
    )
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (cpu)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device visible to torch")
    device = torch.device(args.device)
    args.batch = args.batch or (8 if device.type == "cpu" else 128)
    args.steps = args.steps or (25 if device.type == "cpu" else 50)
    dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16}
    args.amp_dtype = dtypes[args.amp_dtype] if args.amp else None
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # the same for both models of a pair
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    load = os.getloadavg()[0]
    where = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu, {torch.get_num_threads()} threads, {os.cpu_count()} cores"
        f", load average {load:.2f} at start"
    )
    precision = f"autocast {args.amp_dtype}" if args.amp_dtype else "float32"
    print(
        f"torch {torch.__version__}, torchvision {torchvision.__version__}; {where}; "
        f"batch {args.batch}; median of {args.steps} steps after {args.warmup} warm-up; "
        f"{precision}; {'channels_last' if args.channels_last else 'NCHW contiguous'}"
        f"{'; torch.compile' if args.compile else ''}"
    )
    ratios = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.control:
            module = generated_model_module(ROOT / "specs" / "alexnet.arch", "torch", tmp)
            module.build_model = HandwrittenAlexNet  # "generated" is a second hand-written one
            ratios["control"] = run_pair(
                "(control) A/A: the same hand-written model twice",
                module,
                "bench/handwritten_alexnet.py (instance 1)",
                HandwrittenAlexNet(),
                "bench/handwritten_alexnet.py (instance 2)",
                PAPER_PARAMETERS,
                args,
                device,
                fmt,
                target=None,
            )
        if "a" in args.pairs:
            spec = ROOT / "specs" / "variants" / "torchvision_alexnet.arch"
            module = generated_model_module(spec, "torch", tmp)
            torch.manual_seed(args.seed)
            ratios["a"] = run_pair(
                "(a) torchvision's AlexNet",
                module,
                "specs/variants/torchvision_alexnet.arch",
                torchvision.models.alexnet(weights=None),
                "torchvision.models.alexnet(weights=None)",
                61_100_840,
                args,
                device,
                fmt,
            )
        if "b" in args.pairs:
            module = generated_model_module(ROOT / "specs" / "alexnet.arch", "torch", tmp)
            ratios["b"] = run_pair(
                "(b) the paper's AlexNet",
                module,
                "specs/alexnet.arch",
                HandwrittenAlexNet(),
                "bench/handwritten_alexnet.py",
                PAPER_PARAMETERS,
                args,
                device,
                fmt,
            )
            if not args.no_optimizer_section:
                print("(c) optimizer step alone, specs/alexnet.arch's parameters, same gradients")
                time_optimizers(module, args, device, fmt)
        if "r" in args.pairs:
            module = generated_model_module(ROOT / "specs" / "zoo" / "resnet18.arch", "torch", tmp)
            torch.manual_seed(args.seed)
            ratios["r"] = run_pair(
                "(r) torchvision's ResNet-18",
                module,
                "specs/zoo/resnet18.arch",
                torchvision.models.resnet18(weights=None),
                "torchvision.models.resnet18(weights=None)",
                11_689_512,
                args,
                device,
                fmt,
                copy=copy_by_rule(torchvision_names.resnet),
            )
        if "v" in args.pairs:
            module = generated_model_module(ROOT / "specs" / "zoo" / "vit_b_16.arch", "torch", tmp)
            torch.manual_seed(args.seed)
            ratios["v"] = run_pair(
                "(v) torchvision's ViT-B/16",
                module,
                "specs/zoo/vit_b_16.arch",
                torchvision.models.vit_b_16(weights=None),
                "torchvision.models.vit_b_16(weights=None)",
                86_567_656,
                args,
                device,
                fmt,
                copy=copy_by_rule(torchvision_names.vit),
            )
    summary = ", ".join(f"({k}) {v:.3f}" for k, v in ratios.items())
    print(
        f"generated / reference: {summary}  (target <= {TARGET}; "
        f"load average {os.getloadavg()[0]:.2f} at end)"
    )


if __name__ == "__main__":
    main()
