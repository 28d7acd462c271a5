"""`archdsl check` and `archdsl shapes` on the zoo's largest spec stay well under a second.

Both commands run in this process (cli.main; the interpreter's start-up and imports are the
same for every spec, see bench/front_end_scaling.py) on the zoo spec with the most layers and,
as a peer measured in the same run, on AlexNet. The times are printed; the bound is generous
(a loaded two-core machine), as the other timing bounds of the suite are.
"""

from __future__ import annotations

import statistics
import time

from core_helpers import SPECS_DIR, run_inprocess

from archdsl.compiler import check_source

BOUND = 1.0  # seconds; measured ~0.1 (DenseNet-169, 595 layers) on two shared cores


def largest_zoo_spec():
    """The zoo spec whose report has the most layers."""
    specs = sorted((SPECS_DIR / "zoo").glob("*.arch"))
    layers = {
        p: len(check_source(p.read_text(encoding="utf-8"), p.name).report.layers) for p in specs
    }
    return max(layers, key=layers.get), max(layers.values())


def seconds(capsys, *argv: str) -> float:
    """Median wall time of `archdsl ARGV` in this process over three runs (exit code 0)."""
    times = []
    for _ in range(3):
        start = time.perf_counter()
        code, _, _ = run_inprocess(capsys, *argv)
        times.append(time.perf_counter() - start)
        assert code == 0
    return statistics.median(times)


def test_check_and_shapes_of_the_largest_zoo_spec_take_well_under_a_second(capsys):
    largest, layers = largest_zoo_spec()
    peer = SPECS_DIR / "alexnet.arch"
    lines = []
    for command in ("check", "shapes"):
        ours, theirs = seconds(capsys, command, str(largest)), seconds(capsys, command, str(peer))
        lines.append(
            f"{command} {largest.name} ({layers} layers): {ours * 1000:.0f} ms; "
            f"alexnet.arch: {theirs * 1000:.0f} ms ({ours / theirs:.1f}x)"
        )
        assert ours < BOUND, lines[-1]
    with capsys.disabled():
        print("\n" + "\n".join(lines))
