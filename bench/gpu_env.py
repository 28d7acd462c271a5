"""The machine check of bench/gpu_check.sh: versions, the GPU, and whether archdsl's compile
path (lark, pydantic) and its backends import. Prints lines starting `env:`; with --device
cuda, nvidia-smi's view too, and exit 1 where torch sees no CUDA device.

    PYTHONPATH=$PWD .venv/bin/python bench/gpu_env.py --device cuda
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys

import archdsl.backends
import lark
import pydantic
import torch
import torchvision

import archdsl.cli

NVIDIA_SMI = [
    "nvidia-smi",
    "--query-gpu=name,driver_version,memory.total,clocks.max.sm",
    "--format=csv,noheader",
]


def versions() -> str:
    """Python, torch (CUDA, cuDNN), torchvision, lark and pydantic versions, torch threads."""
    return (
        f"Python {platform.python_version()}, torch {torch.__version__} (CUDA "
        f"{torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}), torchvision "
        f"{torchvision.__version__}, lark {lark.__version__}, pydantic {pydantic.VERSION}, "
        f"{torch.get_num_threads()} torch threads; archdsl.backends from "
        f"{archdsl.backends.__path__[0]}"
    )


def gpu() -> str:
    """The first CUDA device's name, memory, capability and SM count, as torch sees it."""
    p = torch.cuda.get_device_properties(0)
    return (
        f"{p.name}, {p.total_memory / 2**30:.0f} GiB, capability {p.major}.{p.minor}, "
        f"{p.multi_processor_count} SMs, {torch.cuda.device_count()} device(s); "
        f"nvidia-smi: {nvidia_smi()}"
    )


def nvidia_smi() -> str:
    """nvidia-smi's name, driver, memory and top SM clock, or why it gave none."""
    try:
        done = subprocess.run(NVIDIA_SMI, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"not run ({e})"
    return (done.stdout or done.stderr).strip().replace("\n", "; ")


def main() -> None:
    """Print the env: lines; exit 1 for --device cuda without a CUDA device."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    args = p.parse_args()
    print(f"env: {versions()}")
    if torch.cuda.is_available():
        print(f"env: {gpu()}")
    elif args.device == "cuda":
        sys.exit(f"torch {torch.__version__} sees no CUDA device; nvidia-smi: {nvidia_smi()}")


if __name__ == "__main__":
    main()
