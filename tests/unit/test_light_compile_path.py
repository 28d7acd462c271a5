"""`check`, `shapes` and `ir` never import a deep-learning framework."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import sys
from archdsl.cli import main
code = main(sys.argv[1:])
heavy = sorted(m for m in ("torch", "tensorflow", "keras", "jax") if m in sys.modules)
print("HEAVY:" + ",".join(heavy))
"""


def test_front_end_commands_import_no_framework():
    for argv in (
        ["check", "specs/alexnet.arch"],
        ["shapes", "specs/alexnet.arch", "--format", "json"],
        ["ir", "specs/alexnet.arch"],
    ):
        done = subprocess.run(
            [sys.executable, "-c", PROBE, *argv], cwd=ROOT, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().splitlines()[-1] == "HEAVY:", argv
