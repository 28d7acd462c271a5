"""Run a generated train.py as `python train.py ARGS` would, noting when each step ends.

  python bench/e2e_trace.py --times FILE [--profile FILE] DIR/train.py ARGS...

Both trainers call their progress.StepProgress's update() once after every optimizer step
(unit "step"; the validation passes' bars count "batch"es and are not recorded); this
launcher wraps it to record time.perf_counter() (about a microsecond per step) and writes
{"marks": [[position, seconds], ...]} to --times when the trainer exits. The trainer itself
is untouched and runs as its own script (sys.path[0] its folder, __name__ "__main__"). With
--profile, cProfile traces the main process (not DataLoader worker processes) and the
functions with the most cumulative and own time go to that file (the full statistics to
its .prof sibling, for pstats).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import runpy
import sys
import time
from pathlib import Path


def parse_args(argv=None):
    """(launcher flags, the trainer's argv)."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--times", type=Path, required=True, help="JSON of [step, perf_counter] marks")
    p.add_argument("--profile", type=Path, help="cProfile's top functions, as text")
    p.add_argument("train_py", type=Path)
    p.add_argument("train_args", nargs=argparse.REMAINDER)
    return p.parse_args(argv)


def trace_steps(marks):
    """Wrap StepProgress.update (the one train.py imports) to append (position, time) of
    each training step."""
    import progress  # the copy beside train.py: sys.path[0] is its folder

    update = progress.StepProgress.update

    def timed_update(self, position):
        if self.unit == "step":
            marks.append((position, time.perf_counter()))
        return update(self, position)

    progress.StepProgress.update = timed_update


def profile_text(profiler):
    """The top 30 functions by cumulative time, then the top 30 by own time."""
    out = io.StringIO()
    for key in ("cumulative", "tottime"):
        pstats.Stats(profiler, stream=out).sort_stats(key).print_stats(30)
    return out.getvalue()


def main() -> int:
    """Run the trainer; write the step times (and the profile); return its exit status."""
    args = parse_args()
    script = args.train_py.resolve()
    sys.argv = [str(script), *args.train_args]
    sys.path[0] = str(script.parent)
    marks = []
    trace_steps(marks)
    profiler = cProfile.Profile() if args.profile else None
    status = 0
    try:
        if profiler is not None:
            profiler.enable()
        runpy.run_path(str(script), run_name="__main__")
    except SystemExit as stop:
        status = stop.code if isinstance(stop.code, int) else (stop.code is not None)
    finally:
        if profiler is not None:
            profiler.disable()
            args.profile.write_text(profile_text(profiler), encoding="utf-8")
            profiler.dump_stats(args.profile.with_suffix(".prof"))
    args.times.write_text(json.dumps({"marks": marks}))
    return status


if __name__ == "__main__":
    sys.exit(main())
