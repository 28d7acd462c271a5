"""The CUDA defaults: TF32 matmuls and convolutions, bf16 autocast and channels-last on
GPUs with native bf16 (compute capability 8.0 and later) unless --fp32; the CPU keeps
plain float32 (bit-reproducible runs)."""

import torch

# the runtime beside this file (isort: split keeps one order wherever ruff runs)
# isort: split
from trainer_args import BF16_CAPABILITY, check_precision


def fast_device(device):
    """Whether device is a GPU with native bf16 (where the fast defaults apply)."""
    return device.type == "cuda" and (
        torch.cuda.get_device_capability(device) >= BF16_CAPABILITY
    )


def add_precision_flags(parser):
    """--amp, --channels-last (default: on for GPUs with bf16) and --fp32."""
    parser.add_argument(
        "--amp",
        action="store_true",
        default=None,
        help="CUDA autocast: bf16 (fp16 + GradScaler where bf16 is missing); "
        "default on for GPUs with bf16, off elsewhere",
    )
    parser.add_argument(
        "--channels-last",
        action="store_true",
        default=None,
        help="NHWC memory format; default on for GPUs with bf16",
    )
    parser.add_argument(
        "--fp32",
        action="store_true",
        help="plain float32 on CUDA: no TF32, no autocast, no channels-last by default",
    )


def resolve_precision(args, devices):
    """Fill in --amp and --channels-last from the devices and set TF32 on CUDA (not
    under --fp32); UsageError for --fp32 with --amp."""
    check_precision(args)
    fast = not args.fp32 and all(map(fast_device, devices))
    args.amp = fast if args.amp is None else args.amp
    args.channels_last = fast if args.channels_last is None else args.channels_last
    if any(d.type == "cuda" for d in devices):
        torch.set_float32_matmul_precision("highest" if args.fp32 else "high")
        torch.backends.cudnn.allow_tf32 = not args.fp32
