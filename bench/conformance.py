"""One spec, two backends, the same numbers: `python bench/conformance.py SPEC...`.

For each spec: build it in PyTorch, re-initialise it so that every op matters, save the
portable weights and random inputs, load them into the Keras model compiled from the same
spec, and compare the eval-mode logits; then train 5 steps of the spec's optimizer in both
(float64, dropout off, the rate divided by 10 from step 3) from the spec's own initialisation
and compare the weights after every step, with each other and with a NumPy implementation of
the spec's optimizer rule fed with each backend's gradients. The work runs in one PyTorch and one
Keras subprocess (tests/conformance/torch_driver.py and keras_driver.py; torch and TensorFlow
must not share a process). Differences are max |keras - torch| and that divided by max |torch|
(per tensor, the worst tensor shown, for the weights).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "conformance"))

import conform  # noqa: E402


def tasks_for(specs, root: Path, train: bool, batch: int):
    tasks = []
    for spec in specs:
        directory = root / conform.spec_dirname(spec)
        tasks.append({"kind": "infer", "spec": str(spec), "dir": str(directory)})
        if train:
            tasks.append(
                {"kind": "train", "spec": str(spec), "dir": str(directory), "batch": batch}
            )
    return tasks


def error_line(result: dict) -> str:
    """The last line of a driver's traceback, without the exception's name."""
    return result["error"].strip().splitlines()[-1].split(": ", 1)[-1][:60]


def rows(spec, torch_results, keras_results):
    """The table rows of one spec: spec, stage, max abs, max rel, then for training steps each
    backend's max rel against the NumPy rule fed with its own gradients."""
    name = conform.spec_id(spec)
    infer_t, infer_k = torch_results[0], keras_results[0]
    if "error" in infer_t or "error" in infer_k:
        failed = infer_t if "error" in infer_t else infer_k
        yield name, "inference", "failed", error_line(failed), "", ""
        return
    directory = Path(infer_t["dir"])
    err, rel = conform.diff(
        conform.np.load(directory / "keras_out.npz")["logits"],
        conform.np.load(directory / "torch_out.npz")["logits"],
    )
    yield name, "inference (logits)", f"{err:.1e}", f"{rel:.1e}", "", ""
    if len(torch_results) < 2:
        return
    train_t, train_k = torch_results[1], keras_results[1]
    if "error" in train_t or "error" in train_k:
        failed = train_t if "error" in train_t else train_k
        yield name, "training", "failed", error_line(failed), "", ""
        return
    rule = conform.rule_name(train_t["optimizer"])
    for step, cross in enumerate(train_k["cross"]):
        yield (
            name,
            f"step {step + 1} (lr {train_t['lrs'][step]:g})",
            f"{cross['max_abs']:.1e}",
            f"{cross['max_rel']:.1e}",
            f"{train_t['reference'][step][rule]['max_rel']:.1e} ({rule})",
            f"{train_k['reference'][step][rule]['max_rel']:.1e}",
        )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("specs", nargs="+", type=Path, metavar="SPEC")
    p.add_argument("--no-train", action="store_true", help="compare inference only")
    p.add_argument(
        "--batch",
        type=int,
        default=conform.BATCH,
        help="training batch size (default 2; batch norm on flat features wants more)",
    )
    args = p.parse_args(argv)
    specs = [s.resolve() for s in args.specs]
    with tempfile.TemporaryDirectory(prefix="archdsl-conformance-") as tmp:
        root = Path(tmp)
        tasks = tasks_for(specs, root, not args.no_train, args.batch)
        torch_results = conform.run_driver("torch", tasks, root, timeout=3600)
        keras_results = conform.run_driver("keras", tasks, root, timeout=3600)
        for task, result in zip(tasks, torch_results, strict=True):
            result["dir"] = task["dir"]
        per = 1 if args.no_train else 2
        table = []
        for i, spec in enumerate(specs):
            part = slice(i * per, (i + 1) * per)
            table += list(rows(spec, torch_results[part], keras_results[part]))
    header = ("spec", "stage", "max abs", "max rel", "torch vs NumPy", "keras vs NumPy")
    widths = [max(len(str(r[c])) for r in [header, *table]) for c in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    print(line)
    last = None
    for row in table:
        shown = ("" if row[0] == last else row[0], *row[1:])
        last = row[0]
        print("  ".join(str(c).ljust(w) for c, w in zip(shown, widths, strict=True)).rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
