"""`python -m tests.difffuzz --seed N --count M`: run the fuzzer by hand, print a summary and
every disagreement shrunk to a minimal spec (exit 1 when there is one)."""

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from . import harness, regressions


def main(argv=None) -> int:
    """Parse the flags, run, print the summary; the exit status."""
    parser = argparse.ArgumentParser(prog="python -m tests.difffuzz", description=__doc__)
    parser.add_argument("--seed", type=int, default=0, help="the run's seed (default 0)")
    parser.add_argument("--count", type=int, default=40, help="valid specs (default 40)")
    parser.add_argument(
        "--mutants", type=int, default=None, help="mutated specs (default 3 x count)"
    )
    parser.add_argument("--batch", type=int, default=40, help="specs per driver job (default 40)")
    parser.add_argument(
        "--regressions",
        action="store_true",
        help="also run the known disagreements (regressions.py)",
    )
    parser.add_argument(
        "--shrink-seconds", type=float, default=180, help="per failure (default 180)"
    )
    parser.add_argument("--print-specs", action="store_true", help="print the specs, run nothing")
    parser.add_argument("--keep", metavar="DIR", help="work in DIR and keep every case's files")
    args = parser.parse_args(argv)
    mutants = 3 * args.count if args.mutants is None else args.mutants
    valid, mutated = harness.labelled_specs(args.seed, args.count, mutants)
    labelled = (regressions.labelled() if args.regressions else []) + valid + mutated
    if args.print_specs:
        for label, spec in labelled:
            print(f"# {label}\n{spec.text()}")
        return 0
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="difffuzz-"))
    fuzz = harness.Harness(work, keep=bool(args.keep))
    try:
        summary = harness.run(
            fuzz,
            labelled,
            batch=args.batch,
            shrink_seconds=args.shrink_seconds,
            progress=lambda line: print(line, file=sys.stderr, flush=True),
        )
    finally:
        fuzz.close()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(summary.text())
    return 1 if summary.failures else 0


if __name__ == "__main__":
    sys.exit(main())
