"""Driver processes: one per framework, kept for a whole run (TensorFlow takes seconds to start,
and shrinking a failure runs many small jobs), never both frameworks in one process.

The harness writes a job (a JSON list of tasks, as tests/conformance's) and sends its path on a
line to the driver's stdin; the driver runs each task with conform.run_task (which records its
result or its traceback in dir/<backend>_<kind>.json) and answers with a line `MARKER path`.
A driver that dies or hangs is restarted for the next job; its unfinished tasks report that.
"""

from __future__ import annotations

import itertools
import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import conform

MARKER = "difffuzz-done"
HERE = Path(__file__).resolve().parent
TASK_SECONDS = 60  # a job may take this long per task before its driver is called hung
_serial = itertools.count()


def serve(backend: str, work: dict) -> None:
    """The driver's loop: read job paths from stdin, run their tasks, answer each."""
    for line in sys.stdin:
        job = line.strip()
        if not job:
            continue
        for task in json.loads(Path(job).read_text()):
            conform.run_task(backend, task, work[task["kind"]])
        print(f"{MARKER} {job}", flush=True)


class Driver:
    """A framework's driver process, started on first use."""

    def __init__(self, backend: str, work_dir: Path):
        """A driver for `backend` ('torch' or 'keras') that keeps its files in work_dir."""
        self.backend, self.work_dir = backend, Path(work_dir)
        self.process: subprocess.Popen | None = None
        self.pending = ""
        self.log = self.work_dir / f"{backend}_driver.log"

    def start(self) -> None:
        """Start the process (PYTHONPATH as conform.run_driver sets it, plus tests/)."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        paths = [str(HERE.parent), str(conform.HERE), str(conform.ROOT)]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", f"difffuzz.{self.backend}_side"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                cwd=conform.ROOT,
                env=env,
            )
        self.pending = ""

    def run(self, tasks: list[dict]) -> list[dict]:
        """Run the tasks; each one's result (or {"error": ...})."""
        if not tasks:
            return []
        if self.process is None or self.process.poll() is not None:
            self.start()
        job = self.work_dir / f"{self.backend}_job_{next(_serial)}.json"
        job.write_text(json.dumps(tasks, indent=1))
        for task in tasks:
            conform.result_path(self.backend, task).unlink(missing_ok=True)
        try:
            self.process.stdin.write(f"{job}\n".encode())
            self.process.stdin.flush()
            self.wait(f"{MARKER} {job}", TASK_SECONDS * len(tasks))
        except (OSError, EOFError, TimeoutError) as exc:
            self.stop()
            failure = f"{self.backend} driver {type(exc).__name__}: {exc}\n{self.log_tail()}"
            return [self.result(task, failure) for task in tasks]
        finally:
            job.unlink(missing_ok=True)
        return [conform.read_result(self.backend, task) for task in tasks]

    def result(self, task: dict, failure: str) -> dict:
        """The task's result, or the driver's failure when it has none."""
        if conform.result_path(self.backend, task).exists():
            return conform.read_result(self.backend, task)
        return {"error": failure}

    def wait(self, marker: str, timeout: float) -> None:
        """Read the driver's stdout until `marker` (EOFError if it exits, TimeoutError)."""
        deadline = time.monotonic() + timeout
        fd = self.process.stdout.fileno()
        while marker not in self.pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no answer in {timeout:.0f} s")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    raise EOFError(f"exited with {self.process.wait()}")
                self.pending += chunk.decode(errors="replace")
        self.pending = self.pending.split(marker, 1)[1]

    def log_tail(self) -> str:
        """The end of the driver's stderr, for a failure message."""
        try:
            return self.log.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def stop(self) -> None:
        """End the process (closing its stdin ends its loop; kill it if it does not go)."""
        if self.process is None:
            return
        try:
            self.process.stdin.close()
            self.process.wait(timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        self.process = None
