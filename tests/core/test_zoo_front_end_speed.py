"""`archdsl check` and `archdsl shapes` on the zoo's largest spec stay well under a second.

Every zoo spec is checked once in this process, timed; the one with the most layers then runs
through `archdsl shapes` (cli.main, in process: the interpreter's start-up and imports are the
same for every spec, see bench/front_end_scaling.py), and so does AlexNet, the peer measured in
the same run. The times are printed; the bound is generous (a loaded two-core machine), as the
suite's other timing bounds are.
"""

from __future__ import annotations

import time

from core_helpers import SPECS_DIR, run_inprocess

from archdsl.compiler import check_source

BOUND = 1.0  # seconds; measured ~0.1 (DenseNet-169, 595 layers) on two shared cores


def timed_check(path):
    """(seconds, layers) of checking one spec in this process."""
    text = path.read_text(encoding="utf-8")
    start = time.perf_counter()
    checked = check_source(text, path.name)
    return time.perf_counter() - start, len(checked.report.layers)


def timed_shapes(capsys, path) -> float:
    """Seconds of `archdsl shapes PATH` in this process (exit code 0)."""
    start = time.perf_counter()
    code, out, _ = run_inprocess(capsys, "shapes", str(path))
    assert code == 0 and "total params" in out
    return time.perf_counter() - start


def test_check_and_shapes_of_the_largest_zoo_spec_take_well_under_a_second(capsys):
    timed_check(SPECS_DIR / "alexnet.arch")  # warm-up: the parser and the models build lazily
    check_peer, _ = timed_check(SPECS_DIR / "alexnet.arch")
    checks = {p: timed_check(p) for p in sorted((SPECS_DIR / "zoo").glob("*.arch"))}
    largest = max(checks, key=lambda p: checks[p][1])
    check_ours, layers = checks[largest]
    shapes_ours, shapes_peer = (
        timed_shapes(capsys, largest),
        timed_shapes(capsys, SPECS_DIR / "alexnet.arch"),
    )
    report = (
        f"{largest.name} ({layers} layers) against alexnet.arch: check {check_ours * 1000:.0f} ms "
        f"vs {check_peer * 1000:.0f} ms, shapes {shapes_ours * 1000:.0f} ms vs "
        f"{shapes_peer * 1000:.0f} ms; slowest zoo check {max(t for t, _ in checks.values()) * 1000:.0f} ms"
    )
    with capsys.disabled():
        print("\n" + report)
    assert max(t for t, _ in checks.values()) < BOUND and shapes_ours < BOUND, report
