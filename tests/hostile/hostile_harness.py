"""What every hostile case checks: one line on stderr, the exit code, nothing changed outside
the run's own folders; and the means to run the trainers and generated models in subprocesses.

Built on tests/unit/cli_harness.py (archdsl(), one_line_error()). The snapshot here records
sizes and modification times (not contents): a file rewritten with the same bytes is a change.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
from cli_harness import TINY, one_line_error
from PIL import Image

from archdsl.compiler import check_source
from archdsl.emit import write_output

# quiet frameworks (TensorFlow logs to stderr otherwise), one thread each (2 shared cores),
# no bytecode written beside the compiled files, no colour
ENV = {
    "NO_COLOR": "1",
    "OMP_NUM_THREADS": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
    "KERAS_BACKEND": "tensorflow",
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "TF_ENABLE_ONEDNN_OPTS": "0",
}
# TensorFlow's info and warning log lines (I0000 00:00:1796051668.456612   20171 port.cc:153] ...)
# and the two notices around them
TF_NOTICE = re.compile(
    r"[IW]\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] "
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$"
    r"|To enable the following instructions: "
)
CASE_SECONDS = 10  # the longest any one hostile case or fuzz case may take
# the trainer flags of every training run: 4 synthetic images, one step
QUICK = [
    "--synthetic-per-class",
    "2",
    "--batch-size",
    "2",
    "--epochs",
    "1",
    "--max-steps",
    "1",
    "--workers",
    "0",
]


CLASSES = ("a", "b")  # the tiny spec's two classes


def png(path: Path) -> None:
    """A valid 8 x 8 RGB image."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), 99, np.uint8)).save(path, "PNG")


def image_folder(root: Path) -> Path:
    """DIR/train/<class>/ with 2 images, DIR/val/<class>/ with 1, for each class."""
    for split, count in (("train", 2), ("val", 1)):
        for name in CLASSES:
            for i in range(count):
                png(root / split / name / f"{i}.png")
    return root


def compile_tiny(out: Path, backend: str) -> Path:
    """Compile cli_harness.TINY (3 x 8 x 8 in, 2 classes) for a backend into `out`."""
    checked = check_source(TINY, "tiny.arch")
    write_output(checked, backend, out)
    return out


def tree(root: Path, own: tuple[Path, ...] = ()) -> dict[str, tuple]:
    """Every entry under root but the `own` folders: mode, size and mtime (a link: its target).

    Folders are listed without size and mtime: making an own folder changes its parent's.
    """
    state = {}
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        dirs[:] = [d for d in dirs if here / d not in own]
        for name in dirs + files:
            path = here / name
            if path in own:
                continue
            info = path.lstat()
            if stat.S_ISDIR(info.st_mode):
                state[str(path.relative_to(root))] = (info.st_mode,)
            else:
                link = os.readlink(path) if stat.S_ISLNK(info.st_mode) else None
                state[str(path.relative_to(root))] = (
                    info.st_mode,
                    info.st_size,
                    info.st_mtime_ns,
                    link,
                )
    return state


class Untouched:
    """`with Untouched(root, own...)`: nothing under root but the own folders may change."""

    def __init__(self, root: Path, *own: Path):
        """Remember the folder and the run's own folders in it."""
        self.root, self.own = root, tuple(own)

    def start(self) -> Untouched:
        """Snapshot the tree."""
        self.before = tree(self.root, self.own)
        return self

    def changes(self) -> list[str]:
        """The entries added, removed or changed since start()."""
        after = tree(self.root, self.own)
        return sorted(
            k for k in self.before.keys() | after.keys() if self.before.get(k) != after.get(k)
        )

    def __enter__(self) -> Untouched:
        """Snapshot the tree."""
        return self.start()

    def __exit__(self, kind, value, trace) -> None:
        """Compare, unless the case itself failed."""
        if kind is None:
            changed = self.changes()
            assert not changed, f"changed outside the run's folders: {changed}"


def one_line(done, code: int = 2, *keys: str) -> str:
    """The single printable stderr line of a run that exits `code`, holding every key."""
    line = one_line_error(done, code)
    assert line.isprintable(), repr(line)
    assert b"Traceback" not in done.stdout
    for key in keys:
        assert key in line, (key, line)
    return line


def lines(done) -> list[str]:
    """stderr's lines, asserting no traceback and no unprintable character in any; the
    start-up notices of the GPU-capable TensorFlow (its absl log lines, written before
    TF_CPP_MIN_LOG_LEVEL takes effect) are left out: they are TensorFlow's, not ours."""
    err = done.stderr.decode("utf-8", "replace")
    assert "Traceback" not in err, err
    found = [line for line in err.splitlines() if not TF_NOTICE.match(line)]
    assert all(line.isprintable() for line in found), err
    return found


def python(*args, cwd: Path, timeout: float = 120, **options):
    """Run `python ARGS` (e.g. a compiled train.py) quietly; bytes out and err."""
    return subprocess.run(
        [sys.executable, *map(os.fsencode, args)],
        cwd=cwd,
        env={**os.environ, **ENV},
        capture_output=True,
        timeout=timeout,
        **options,
    )


# train.main(argv) for each argv of the JSON list on stdin, each under an alarm of
# CASE_SECONDS; prints [{code, stdout, stderr, seconds, crash}] (crash: a traceback, or a hang)
TRAIN_DRIVER = """
import contextlib, io, json, signal, sys, time, traceback
import train

class Hang(BaseException):  # not an OSError: no `except OSError` in the trainer swallows it
    pass

def alarm(signum, frame):
    raise Hang("over {limit} s")

signal.signal(signal.SIGALRM, alarm)
results = []
for argv in json.load(sys.stdin):
    out, err, crash = io.StringIO(), io.StringIO(), None
    start = time.perf_counter()
    signal.alarm({limit})
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = train.main(argv)
        except SystemExit as stop:
            code = stop.code
        except BaseException:
            code, crash = None, traceback.format_exc()
    signal.alarm(0)
    results.append({{"code": code, "stdout": out.getvalue(), "stderr": err.getvalue(),
                    "seconds": time.perf_counter() - start, "crash": crash}})
print(json.dumps(results))
"""


def train_main_calls(build: Path, argvs: list[list], limit: int = CASE_SECONDS) -> list[dict]:
    """[{code, stdout, stderr, seconds, crash}] of the compiled train.main(argv) for each argv,
    all in one process (the framework is imported once)."""
    plan = json.dumps(
        [[os.fsdecode(a) if isinstance(a, bytes) else str(a) for a in argv] for argv in argvs]
    )
    driver = TRAIN_DRIVER.format(limit=limit)
    done = python("-c", driver, cwd=build, timeout=60 + limit * len(argvs), input=plan.encode())
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-4000:]
    return json.loads(done.stdout.splitlines()[-1])


def refused_in_process(result: dict, *keys: str, code: int = 2) -> str:
    """The one stderr line of a train.main() call that exits `code`, holding every key."""
    assert result["crash"] is None, result["crash"]
    found = result["stderr"].splitlines()
    assert result["code"] == code and len(found) == 1, result
    assert found[0].isprintable() and all(key in found[0] for key in keys), (keys, found[0])
    return found[0]


class RunsCode:
    """Unpickling this object makes the call it names (e.g. open(victim, "w")): what a crafted
    checkpoint could do."""

    def __init__(self, call, *args):
        """The call that unpickling makes."""
        self.call, self.args = call, args

    def __reduce__(self):
        """Ask pickle to call self.call(*self.args)."""
        return self.call, self.args
