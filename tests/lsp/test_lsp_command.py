"""`archdsl lsp` as a command: no framework on its import path, a clear message without pygls."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import sys
from archdsl.lsp.analysis import analyse
from archdsl.lsp.completion import block_params, completions
from archdsl.lsp.context import context_at
from archdsl.lsp.hover import hover_text
import archdsl.lsp.server
from archdsl.formatter import format_source
text = open("specs/zoo/resnet18.arch").read()
analysis = analyse(text, "resnet18.arch")
for occurrence in analysis.symbols.occurrences:
    hover_text(analysis, occurrence)
completions(context_at(text, text.index("|> flatten") + 3), block_params(analysis.symbols))
format_source(text)
print("HEAVY:" + ",".join(m for m in ("torch", "tensorflow", "numpy") if m in sys.modules))
"""
WITHOUT_PYGLS = """
import sys
sys.modules["pygls"] = None  # as if it were not installed
from archdsl.cli import main
sys.exit(main(["lsp"]))
"""


def run(code: str) -> subprocess.CompletedProcess:
    """Run Python code from the repository root."""
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)


def test_server_imports_no_framework_or_numpy():
    done = run(PROBE)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "HEAVY:"


def test_without_pygls_one_line_and_exit_2():
    done = run(WITHOUT_PYGLS)
    assert done.returncode == 2
    assert done.stderr.strip() == "error[usage]: lsp needs pygls: pip install 'archdsl[lsp]'"
    assert done.stdout == ""
