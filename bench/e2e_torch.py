"""PyTorch half of bench/end_to_end.py, run by it as a subprocess: one JSON line on stdout.

  bare       the generated model's train step on in-memory tensors (4 distinct seeded batches,
             cycled): zero_grad, forward, cross-entropy, backward, the spec's optimizer
  reference  torchvision's reference loop on a JPEG folder: ImageFolder + transforms.v2 (as
             torchvision's references/classification presets with the PIL backend: geometry
             on the PIL image, then PILToTensor, ToDtype, Normalize) + DataLoader(shuffle,
             drop_last, the given workers), the same generated model class and optimizer

Both print the seconds from the loop's start (before iter(DataLoader) for the reference) to
the end of step --from-step and of step --steps, the way the trainer's own images_per_s counts
from its epoch's start: end_to_end.py takes the difference of the two as the steady rate.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torchvision
from harness import load_model_module
from torch.utils.data import DataLoader
from torchvision.datasets import ImageFolder
from torchvision.transforms import v2


def parse_args(argv=None):
    """Flags; end_to_end.py passes all of them."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("mode", choices=("bare", "reference"))
    p.add_argument("model_dir", type=Path, help="a `archdsl compile --backend torch` folder")
    p.add_argument("--batch-size", type=int, required=True)
    p.add_argument("--from-step", type=int, required=True, help="end of the warm-up")
    p.add_argument("--steps", type=int, required=True, help="steps in all")
    p.add_argument("--data", type=Path, help="reference: the ImageFolder root (DIR/train)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--amp", action="store_true", help="CUDA autocast, as the trainer's --amp")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    return p.parse_args(argv)


class Step:
    """One train step of the generated model with the spec's optimizer and loss."""

    def __init__(self, module, args, device):
        """Build model, optimizer, loss and AMP state as the trainer does."""
        self.device, self.args = device, args
        self.fmt = torch.channels_last if args.channels_last else torch.contiguous_format
        torch.manual_seed(0)
        self.model = module.build_model().to(device, memory_format=self.fmt).train()
        self.optimizer = module.build_optimizer(self.model)
        smoothing = module.TRAIN["loss"].get("label_smoothing", 0.0)
        self.criterion = torch.nn.CrossEntropyLoss(label_smoothing=smoothing)
        self.net = torch.compile(self.model) if args.compile else self.model
        cuda = device.type == "cuda" and args.amp
        bf16 = cuda and torch.cuda.is_bf16_supported()
        self.amp_dtype = (torch.bfloat16 if bf16 else torch.float16) if cuda else None
        fp16 = self.amp_dtype == torch.float16
        self.scaler = torch.amp.GradScaler(device.type, enabled=fp16)

    def to_device(self, x, y):
        """A batch on the device, images in the requested memory format."""
        x = x.to(self.device, non_blocking=True).contiguous(memory_format=self.fmt)
        return x, y.to(self.device, non_blocking=True)

    def __call__(self, x, y):
        """zero_grad, forward, loss, backward, optimizer step."""
        self.optimizer.zero_grad(set_to_none=True)
        enabled = self.amp_dtype is not None
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=enabled):
            loss = self.criterion(self.net(x), y)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()


def synchronize(device):
    """Wait for queued kernels (CUDA is asynchronous; the CPU is not)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_loop(batches, step, args, device):
    """Seconds from the start to the end of step --from-step and of step --steps."""
    marks, done = {}, 0
    synchronize(device)
    start = time.perf_counter()
    for done, (x, y) in enumerate(batches, start=1):
        step(*step.to_device(x, y))
        if done in (args.from_step, args.steps):
            synchronize(device)
            marks[done] = time.perf_counter() - start
        if done == args.steps:
            break
    if args.steps not in marks:
        sys.exit(f"e2e_torch: the data ran out after {done} of {args.steps} steps")
    return marks[args.from_step], marks[args.steps]


def memory_batches(module, step, args):
    """--steps batches cycling through 4 seeded (images, labels) ones already on the device."""
    g = torch.Generator().manual_seed(0)
    shape, classes = (args.batch_size, *module.INPUT_SHAPE), module.NUM_CLASSES
    batches = [
        step.to_device(
            torch.randn(shape, generator=g),
            torch.randint(classes, (args.batch_size,), generator=g),
        )
        for _ in range(4)
    ]
    return (batches[i % 4] for i in range(args.steps))


def reference_transform(augment):
    """torchvision's presets for the spec's augment list (random/center crop, hflip,
    normalize); exits for any other entry."""
    geometry, normalize = [], []
    for entry in augment:
        name = entry["name"]
        if name in ("random_crop", "center_crop"):
            crop = v2.RandomCrop if name == "random_crop" else v2.CenterCrop
            geometry += [v2.Resize(entry.get("from", entry["size"])), crop(entry["size"])]
        elif name == "hflip":
            geometry.append(v2.RandomHorizontalFlip(entry.get("p", 0.5)))
        elif name == "normalize":
            normalize.append(v2.Normalize(entry["mean"], entry["std"]))
        else:
            sys.exit(f"e2e_torch: the reference loop has no {name!r} (augment of the spec)")
    tensor = [v2.PILToTensor(), v2.ToDtype(torch.float32, scale=True)]
    return v2.Compose([*geometry, *tensor, *normalize, v2.ToPureTensor()])


def reference_batches(module, args, device):
    """A DataLoader over DIR/train with torchvision's transforms."""
    data = ImageFolder(args.data / "train", transform=reference_transform(module.TRAIN["augment"]))
    return DataLoader(
        data,
        batch_size=args.batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=args.workers,
        pin_memory=device.type == "cuda",
        generator=torch.Generator().manual_seed(0),
    )


def main() -> None:
    """Time one loop and print its JSON line."""
    args = parse_args()
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as the trainer
    module = load_model_module(args.model_dir, "e2e_generated_torch")
    step = Step(module, args, device)
    if args.mode == "bare":
        batches = memory_batches(module, step, args)
    else:
        batches = reference_batches(module, args, device)
    t_from, t_to = timed_loop(batches, step, args, device)
    versions = f"torch {torch.__version__}, torchvision {torchvision.__version__}"
    threads = torch.get_num_threads()
    print(json.dumps({"t_from": t_from, "t_to": t_to, "versions": versions, "threads": threads}))


if __name__ == "__main__":
    main()
