"""End-to-end images/s of the generated trainers against their bare train step and against
torchvision's reference training loop, measured side by side in one run.

For each case (a spec, a batch and a data source) the script compiles the spec for each
backend (`python -m archdsl compile SPEC --backend torch|keras -o DIR`) and runs, as separate
processes (torch and TensorFlow never share one), one after the other:
  trainer    `python DIR/train.py --max-steps N2 --epochs 1 --batch-size B --data FOLDER
             --workers W --out RUN` (or the embedded synthetic data, enough for N2 steps) through
             bench/e2e_trace.py, which notes when each step ends (the trainer's own
             StepProgress.update call, wrapped; the trainer is untouched). Steady rate:
             B * (N2 - N1) / (time of steps N1+1..N2): the epoch's start-up (DataLoader and
             worker start, the first batches, the first steps' warm-up or tf.function trace)
             falls before N1. The trainer's own metrics.csv images_per_s, which counts from
             before the first batch is asked for to the end of step N2, is in the table too;
             validation, the checkpoint, imports, model building and the data scan are
             outside both.
  bare       the same generated model's train step on 4 in-memory batches already on the device
             (bench/e2e_torch.py bare, bench/e2e_keras.py): steps 1..N1 are the warm-up, the
             rate is B * (N2 - N1) / (time of steps N1+1..N2).
  reference  (JPEG cases) torchvision's reference loop in bench/e2e_torch.py: ImageFolder +
             transforms.v2 + DataLoader with the same workers, the generated model class and
             the spec's optimizer, timed as the trainer (steady: steps N1+1..N2).
Ratios: trainer / bare (the loop overhead: data, step wrapper, metrics, logging; goal >= 0.9)
and trainer / reference (end to end against torchvision). With --repeats R the sequence runs
R times; each ratio is the median of its per-repeat ratios (each from adjacent runs). The
table also gives each trainer's images/s per second of its whole process (Python start,
imports, data scan, validation and all).

Cases (CPU defaults; --device cuda doubles the steps and uses the larger batch):
  mini       specs/mini_alexnet.arch on the embedded synthetic data at 67 x 67, batch 64: a
             small model whose step is cheap, so the per-step and per-image overheads show
  mini-jpeg  specs/mini_alexnet.arch on a JPEG folder this script writes (160 x 120 JPEGs,
             quality 90, 10 classes: decode + resize to 72 + crop 67 per image), batch 64:
             the data path costs about as much as the step here
  alexnet    specs/alexnet.arch on the embedded data (227 x 227, 1000 classes), batch 8: the
             compute-bound case (a step takes a quarter of a second on two cores); its
             trainer's wall time is mostly the validation of 1,000 synthetic images
  resnet50   specs/zoo/resnet50.arch on the embedded data (224 x 224), batch 8 (128 on CUDA):
             not in the default run (bench/gpu_check.sh runs it on a GPU)
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from harness import ROOT, compile_spec
from PIL import Image

BENCH = Path(__file__).resolve().parent
GOAL = 0.9  # trainer / bare
BACKENDS = ("torch", "keras")
WORKER = {"torch": BENCH / "e2e_torch.py", "keras": BENCH / "e2e_keras.py"}
TRACER = BENCH / "e2e_trace.py"
CHILD_ENV = {"KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"}


@dataclass(frozen=True)
class Case:
    """A spec, its data source, its batch (CPU, CUDA) and its two step counts (CPU)."""

    spec: str
    jpeg: bool
    batch: tuple[int, int]
    steps: tuple[int, int]
    why: str


CASES = {
    "mini": Case("specs/mini_alexnet.arch", False, (64, 256), (5, 25), "embedded"),
    "mini-jpeg": Case("specs/mini_alexnet.arch", True, (64, 256), (5, 25), "JPEG folder"),
    "alexnet": Case("specs/alexnet.arch", False, (8, 128), (3, 11), "embedded"),
    "resnet50": Case("specs/zoo/resnet50.arch", False, (8, 128), (2, 6), "embedded"),
}
DEFAULT_CASES = ["mini", "mini-jpeg", "alexnet"]
JPEG_SIZE = (160, 120)  # width, height of the written JPEGs
VAL_PER_CLASS = 2


def parse_args(argv=None):
    """Command-line flags."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--cases", nargs="+", choices=tuple(CASES), default=DEFAULT_CASES)
    p.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    p.add_argument("--repeats", type=int, default=1, help="run the whole sequence R times")
    p.add_argument(
        "--steps",
        type=int,
        nargs=2,
        metavar=("N1", "N2"),
        help="override every case's step counts (warm-up end, total)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=min(4, os.cpu_count() or 1),
        help="data workers of the trainers and the reference loop (default: the trainers' "
        "own default, min(4, cores))",
    )
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--amp", action="store_true", help="passed to the trainers and the loops")
    p.add_argument("--channels-last", action="store_true", help="likewise (PyTorch)")
    p.add_argument("--compile", action="store_true", help="likewise (torch.compile; Keras: XLA)")
    p.add_argument("--keep", type=Path, help="keep the compiled models, data and runs here")
    p.add_argument(
        "--profile",
        action="store_true",
        help="cProfile the trainers' main processes (RUN.profile.txt; needs --keep to read "
        "them); the trainer figures then include the profiler's cost",
    )
    args = p.parse_args(argv)
    if args.steps and not 0 < args.steps[0] < args.steps[1]:
        p.error("--steps N1 N2 needs 0 < N1 < N2")
    return args


def case_batch_steps(case, args):
    """(batch, N1, N2) of a case on this device."""
    cuda = args.device == "cuda"
    n1, n2 = args.steps or (tuple(2 * n for n in case.steps) if cuda else case.steps)
    return case.batch[cuda], n1, n2


def write_jpeg_folder(root, classes, train_per_class):
    """DIR/train/<class>/*.jpg and DIR/val/<class>/*.jpg of smooth random colour fields
    with noise (JPEG_SIZE, quality 90), seeded."""
    rng = np.random.default_rng(0)
    width, height = JPEG_SIZE
    for split, count in (("train", train_per_class), ("val", VAL_PER_CLASS)):
        for label in range(classes):
            folder = root / split / f"class{label:04d}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                coarse = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
                field = Image.fromarray(coarse).resize((width, height), Image.Resampling.BILINEAR)
                noise = rng.normal(0, 12, (height, width, 3))
                pixels = np.clip(np.asarray(field) + noise, 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i:05d}.jpg", quality=90)


def num_classes(model_dir):
    """NUM_CLASSES of a generated model.py, read from its text (no framework import)."""
    for line in (model_dir / "model.py").read_text(encoding="utf-8").splitlines():
        if line.startswith("NUM_CLASSES = "):
            return int(line.split("=")[1])
    sys.exit(f"{model_dir}/model.py: no NUM_CLASSES line")


def gpu_flags(args, backend):
    """The --amp / --channels-last / --compile flags that apply to a backend."""
    names = ["amp", "compile"] + (["channels_last"] if backend == "torch" else [])
    return [f"--{n.replace('_', '-')}" for n in names if getattr(args, n)]


def run_child(cmd, cwd):
    """Run a subprocess; (stdout, wall seconds); exits with its stderr on failure."""
    env = {**os.environ, **CHILD_ENV, "PYTHONPATH": os.pathsep.join([str(BENCH), str(ROOT)])}
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd))} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout, wall


def trainer_run(model_dir, run, batch, n1, n2, data_flags, args, backend):
    """{seconds to step N1, to step N2 (from the epoch's first step's end), train phase as
    metrics.csv counts it, process wall} of one traced trainer run of N2 steps."""
    cmd = [sys.executable, TRACER, "--times", run.with_suffix(".times.json")]
    if args.profile:
        cmd += ["--profile", run.with_suffix(".profile.txt")]
    cmd += [model_dir / "train.py", "--max-steps", n2, "--epochs", 1, "--batch-size", batch]
    cmd += ["--out", run, "--device", args.device, "--workers", args.workers, *data_flags]
    _, wall = run_child([str(c) for c in [*cmd, *gpu_flags(args, backend)]], run.parent)
    with open(run / "metrics.csv", newline="", encoding="utf-8") as f:
        row = list(csv.DictReader(f))[-1]
    if int(row["step"]) != n2:
        sys.exit(f"{run}: the trainer stopped at step {row['step']}, not {n2}")
    trace = json.loads(run.with_suffix(".times.json").read_text())
    at = dict(trace["marks"])
    return {
        "from": at[n1],
        "to": at[n2],
        "phase": batch * n2 / float(row["images_per_s"]),
        "wall": wall,
    }


def worker_seconds(mode, model_dir, batch, n1, n2, folder, args, backend):
    """(seconds to step N1, to step N2, versions) of bench/e2e_<backend>.py."""
    cmd = [sys.executable, WORKER[backend], *([mode] if backend == "torch" else [])]
    cmd += [model_dir, "--batch-size", batch, "--from-step", n1, "--steps", n2]
    cmd += ["--device", args.device, *gpu_flags(args, backend)]
    if mode == "reference":
        cmd += ["--data", folder, "--workers", args.workers]
    out, _ = run_child([str(c) for c in cmd], BENCH)
    result = json.loads(out.strip().splitlines()[-1])
    return result["t_from"], result["t_to"], f"{result['versions']}, {result['threads']} threads"


def measure_backend(name, case, model_dir, folder, work, args, repeat, backend):
    """One repeat of one case on one backend: {figure: value}."""
    batch, n1, n2 = case_batch_steps(case, args)
    if folder is not None:
        data_flags = ["--data", folder]
    else:
        data_flags = ["--synthetic-per-class", math.ceil(n2 * batch / num_classes(model_dir))]
    run = work / f"run-{name}-{backend}-{repeat}"
    b1, b2, versions = worker_seconds("bare", model_dir, batch, n1, n2, None, args, backend)
    t = trainer_run(model_dir, run, batch, n1, n2, data_flags, args, backend)
    window = batch * (n2 - n1)
    figures = {
        "trainer": window / (t["to"] - t["from"]),
        "metrics_csv": batch * n2 / t["phase"],
        "per_process": batch * n2 / t["wall"],
        "wall": t["wall"],
        "bare": window / (b2 - b1),
        "versions": versions,
    }
    return {**figures, "overhead": figures["trainer"] / figures["bare"]}


def measure_reference(case, model_dir, folder, args):
    """torchvision's reference loop on the JPEG folder: {steady, from-start images/s}."""
    batch, n1, n2 = case_batch_steps(case, args)
    r1, r2, _ = worker_seconds("reference", model_dir, batch, n1, n2, folder, args, "torch")
    return {"reference": batch * (n2 - n1) / (r2 - r1), "reference_start": batch * n2 / r2}


def median_figures(repeats):
    """The median of every figure over repeats (ratios were taken per repeat)."""
    keys = [k for k in repeats[0] if k != "versions"]
    merged = {k: statistics.median(r[k] for r in repeats) for k in keys}
    return {**merged, "versions": repeats[0]["versions"]}


def machine():
    """The CPU model, core count and Python version."""
    model = platform.processor() or "cpu"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}"


def fmt(value, spec=None):
    """A table cell: the value (one decimal below 100 unless `spec` says), or - when absent."""
    if value is None:
        return "-"
    return format(value, spec or (".1f" if value < 100 else ".0f"))


def print_table(results, args):
    """One Markdown table of images/s and ratios, one row per (case, backend)."""
    print(
        "\n| case | data | backend | batch | N1..N2 | trainer img/s (steady) | metrics.csv "
        "img/s (N2) | img/s per process (N2) | bare step img/s | **trainer / bare** | "
        "reference img/s (steady) | **trainer / reference** | process wall s (N2) |"
    )
    print("|---" * 13 + "|")
    for (name, backend), f in results.items():
        case = CASES[name]
        batch, n1, n2 = case_batch_steps(case, args)
        reference, versus = f.get("reference"), f.get("versus")
        print(
            f"| {name} | {case.why} | {backend} | {batch} | {n1}..{n2} | {fmt(f['trainer'])} | "
            f"{fmt(f['metrics_csv'])} | {fmt(f['per_process'])} | {fmt(f['bare'])} | "
            f"**{f['overhead']:.2f}** | {fmt(reference)} | {fmt(versus, '.2f')} | "
            f"{f['wall']:.1f} |"
        )
    for (name, backend), f in results.items():
        if "reference" in f and backend == "torch":
            print(
                f"\n{name}: torchvision's reference loop {f['reference']:.0f} img/s steady, "
                f"{f['reference_start']:.0f} img/s from its loop's start to step N2 (the "
                f"trainer's metrics.csv counts the same span); reference / torch bare step "
                f"{f['reference'] / f['bare']:.2f}"
            )


def prepare(case, backend, work, args):
    """(compiled model folder, JPEG folder or None) of a case, made on first use."""
    model_dir = work / f"{Path(case.spec).stem}-{backend}"
    if not model_dir.exists():
        compile_spec(ROOT / case.spec, backend, model_dir)
    if not case.jpeg:
        return model_dir, None
    folder = work / f"jpeg-{Path(case.spec).stem}"
    if not folder.exists():
        batch, _, n2 = case_batch_steps(case, args)
        classes = num_classes(model_dir)
        write_jpeg_folder(folder, classes, math.ceil(n2 * batch / classes))
    return model_dir, folder


def run_cases(args, work):
    """Measure every case on every backend, --repeats times; {(case, backend): figures}.

    A JPEG case's reference loop runs first, then each backend's bare step and trainer; the
    trainer / reference ratio is taken within the repeat."""
    results = {}
    for repeat in range(args.repeats):
        for name in args.cases:
            reference = {}
            if CASES[name].jpeg:
                model_dir, folder = prepare(CASES[name], "torch", work, args)
                reference = measure_reference(CASES[name], model_dir, folder, args)
            for backend in args.backends:
                model_dir, folder = prepare(CASES[name], backend, work, args)
                figures = measure_backend(
                    name, CASES[name], model_dir, folder, work, args, repeat, backend
                )
                if reference:
                    versus = figures["trainer"] / reference["reference"]
                    figures.update(reference, versus=versus)
                results.setdefault((name, backend), []).append(figures)
                print(
                    f"repeat {repeat + 1}: {name} {backend}: trainer {fmt(figures['trainer'])}, "
                    f"bare {fmt(figures['bare'])}, reference {fmt(reference.get('reference'))} "
                    f"img/s  (load {os.getloadavg()[0]:.2f})",
                    flush=True,
                )
    return {key: median_figures(repeats) for key, repeats in results.items()}


def main() -> None:
    """Measure and print the table."""
    args = parse_args()
    start = time.perf_counter()
    load = os.getloadavg()
    print(f"{machine()}; device {args.device}; workers {args.workers}; load average {load[0]:.2f}")
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        results = run_cases(args, args.keep.resolve())
    else:
        with tempfile.TemporaryDirectory() as tmp:
            results = run_cases(args, Path(tmp))
    for backend in args.backends:
        versions = next(f["versions"] for (_, b), f in results.items() if b == backend)
        print(f"{backend}: {versions}")
    print_table(results, args)
    low = [f"{n} {b}" for (n, b), f in results.items() if f["overhead"] < GOAL]
    print(
        f"\ntrainer / bare goal >= {GOAL}: {'met' if not low else 'below in ' + ', '.join(low)}; "
        f"load average {load[0]:.2f} at start, {os.getloadavg()[0]:.2f} at end; "
        f"wall {time.perf_counter() - start:.0f} s"
    )


if __name__ == "__main__":
    main()
