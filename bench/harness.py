"""Shared by the backend benches: compile a spec, import its model.py, compare paired timings.

Imports neither torch nor TensorFlow itself: the generated module imports its own framework.
"""

from __future__ import annotations

import importlib.util
import statistics
import subprocess
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
TARGET = 1.02  # generated / peer


def compile_spec(spec: Path, backend: str, out: Path) -> None:
    """`python -m archdsl compile SPEC --backend BACKEND -o OUT`; exits with its stderr on failure."""
    cmd = [sys.executable, "-m", "archdsl", "compile", str(spec), "--backend", backend]
    done = subprocess.run(
        [*cmd, "-o", str(out), "--force"], cwd=ROOT, capture_output=True, text=True
    )
    if done.returncode != 0:
        sys.exit(f"archdsl compile {spec} failed ({done.returncode}):\n{done.stderr}")


def load_model_module(out: Path, name: str) -> ModuleType:
    """Import OUT/model.py as module `name`, its flat runtime imports resolved from OUT.

    The runtime modules it pulls in (optim, schedules, layers, ...) are dropped from
    sys.modules afterwards, so a second output directory gets its own copies.
    """
    out = out.resolve()
    before = set(sys.modules)
    sys.path.insert(0, str(out))
    try:
        spec = importlib.util.spec_from_file_location(name, out / "model.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(out))
        for key in set(sys.modules) - before:
            origin = getattr(sys.modules[key], "__file__", None) or ""
            if Path(origin).resolve().parent == out:
                del sys.modules[key]
    return module


def generated_model_module(spec: Path, backend: str, tmp: Path) -> ModuleType:
    """Compile `spec` into a fresh directory under `tmp` and import its model.py."""
    out = tmp / f"{spec.stem}-{backend}"
    compile_spec(spec, backend, out)
    return load_model_module(out, f"generated_{spec.stem}_{backend}")


def report(times: dict, labels: dict, batch: int | None, target: float | None = TARGET) -> float:
    """Print ms/step (and images/s, given `batch`) per model, then generated / peer; return it.

    `times` holds two lists of per-step seconds, generated first, measured alternately (A B A B),
    so step i of one and step i of the other ran back to back under the same machine state. The
    headline is the median of those per-step ratios. The ratio of the two medians is printed
    beside it: on a shared machine other processes switch it between regimes (a 2-thread step
    can run 5x slower while another process holds a core), and when that happens part-way
    through, the two medians can fall in different regimes while each pair of adjacent steps
    still compares like with like. `min ratio` compares the two fastest steps. Returns the
    paired ratio.
    """
    (gen, gen_t), (peer, peer_t) = times.items()
    med = {name: statistics.median(t) for name, t in times.items()}
    width = max(44, *map(len, labels.values()))
    for name, t in times.items():
        rate = f"  {batch / med[name]:7.1f} images/s" if batch else ""
        print(
            f"    {name:<9}  {labels[name]:<{width}} {med[name] * 1000:8.1f} ms/step{rate}"
            f"  (min {min(t) * 1000:.1f}, max {max(t) * 1000:.1f} ms)"
        )
    paired = statistics.median(a / b for a, b in zip(gen_t, peer_t, strict=True))
    of_medians = med[gen] / med[peer]
    verdict = ""
    if target is not None:
        verdict = f"target <= {target}: {'ok' if paired <= target else 'ABOVE TARGET'}; "
    print(
        f"    {gen} / {peer}: {paired:.3f}  ({verdict}"
        f"ratio of medians {of_medians:.3f}, min ratio {min(gen_t) / min(peer_t):.3f})"
    )
    if abs(of_medians - paired) > 0.02:
        print(
            "    note: the ratio of medians and the paired ratio disagree: the machine's load "
            "changed during the run; trust the paired ratio, or rerun on an idle machine"
        )
    return paired
