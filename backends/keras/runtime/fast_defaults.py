"""The Keras trainer's GPU defaults, as the PyTorch trainer's: XLA (jit_compile), several
steps per tf.function call, and mixed_bfloat16 on GPUs with native bf16 (compute capability
8.0 and later) unless --fp32; the CPU keeps plain float32 steps, one per call, without XLA
(bit-reproducible runs)."""

import argparse

import tensorflow as tf

# the runtime beside this file (isort: split keeps one order wherever ruff runs)
# isort: split
from trainer_args import BF16_CAPABILITY, check_precision, integer

GPU_STEPS_PER_CALL = 8  # unmeasured: amortises a call's host overhead; the bar moves


def add_fast_flags(parser):
    """--amp (default: on for GPUs with bf16), --fp32, --compile / --no-compile (default:
    on for GPUs) and --steps-per-call (default: 1 on the CPU, 8 on GPUs)."""
    parser.add_argument(
        "--amp",
        action="store_true",
        default=None,
        help="mixed precision: mixed_bfloat16 on GPUs with bf16 (no loss scaling), "
        "mixed_float16 with loss scaling elsewhere; default on for GPUs with bf16",
    )
    parser.add_argument(
        "--fp32",
        action="store_true",
        help="plain float32 on GPUs: no TF32, no mixed precision by default",
    )
    parser.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="XLA-compile the steps (jit_compile); default on for GPUs",
    )
    parser.add_argument(
        "--steps-per-call",
        type=integer(1, 4096),
        default=None,
        help=f"training steps per tf.function call (default 1 on the CPU, "
        f"{GPU_STEPS_PER_CALL} on GPUs); the same steps and results either way",
    )


def on_gpus(devices):
    """Whether the replica devices ("/gpu:0", ...) are GPUs."""
    return all(name.startswith("/gpu:") for name in devices)


def has_bf16(device):
    """Whether GPU device "/gpu:i" has native bf16 (compute capability 8.0 or later)."""
    gpu = tf.config.list_physical_devices("GPU")[int(device.split(":")[1])]
    details = tf.config.experimental.get_device_details(gpu)
    return tuple(details.get("compute_capability", (0, 0))) >= BF16_CAPABILITY


def resolve_fast_defaults(args, devices):
    """Fill in --compile and --steps-per-call from the devices, set args.policy (the Keras
    dtype policy, None for float32) and TF32 on GPUs (off under --fp32); UsageError for
    --fp32 with --amp."""
    check_precision(args)
    gpus = on_gpus(devices)
    bf16 = gpus and all(map(has_bf16, devices))
    if args.compile is None:
        args.compile = gpus
    if args.steps_per_call is None:
        args.steps_per_call = GPU_STEPS_PER_CALL if gpus else 1
    amp = (bf16 and not args.fp32) if args.amp is None else args.amp
    args.policy = ("mixed_bfloat16" if bf16 else "mixed_float16") if amp else None
    if gpus:
        tf.config.experimental.enable_tensor_float_32_execution(not args.fp32)


def modes_text(args):
    """` (mixed_bfloat16, XLA, 8 steps per call)` for the header: what differs from plain
    float32 steps, one per call."""
    modes = [args.policy] if args.policy else []
    modes += ["XLA"] if args.compile else []
    per_call = args.steps_per_call
    modes += [f"{per_call} steps per call"] if per_call > 1 else []
    return f" ({', '.join(modes)})" if modes else ""
