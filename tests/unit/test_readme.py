"""The README's command outputs are real and current; its quickstart is what CI runs.

Refresh the outputs with: ARCHDSL_UPDATE_README=1 python -m pytest tests/unit/test_readme.py
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from archdsl.signatures import AUGMENTS, INITS, OPS, OPTIMIZERS, SCHEDULES

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
BLOCK = re.compile(r"<!-- output: (?P<cmd>.+?) -->\n(?P<body>.*?)<!-- end -->", re.S)


def run_archdsl(cmd: str) -> str:
    """Run an `archdsl ...` command line from the repository root; stdout and stderr together."""
    argv = shlex.split(cmd)
    assert argv[0] == "archdsl"
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "100"}
    done = subprocess.run(
        [sys.executable, "-m", "archdsl", *argv[1:]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    return done.stderr + done.stdout


def rendered(text: str) -> str:
    """The README with every output block recomputed."""

    def fill(m: re.Match) -> str:
        out = run_archdsl(m["cmd"]).rstrip("\n")
        return f"<!-- output: {m['cmd']} -->\n```\n$ {m['cmd']}\n{out}\n```\n<!-- end -->"

    return BLOCK.sub(fill, text)


def test_readme_outputs_are_current():
    text = README.read_text(encoding="utf-8")
    assert BLOCK.search(text), "the README shows no command output"
    for match in BLOCK.finditer(text):  # one fenced block each, never the next block's end
        assert match["body"].count("```") == 2, f"<!-- output: {match['cmd']} --> lacks its end"
    fresh = rendered(text)
    if os.environ.get("ARCHDSL_UPDATE_README"):
        README.write_text(fresh, encoding="utf-8")
    assert fresh == text, "README outputs are stale: run with ARCHDSL_UPDATE_README=1"


def quickstart_lines() -> list[str]:
    """The two command lines of the Quickstart section."""
    section = README.read_text(encoding="utf-8").split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    block = section.split("```", 2)[1]
    return [line for line in block.strip().splitlines() if line.strip()]


def test_ci_runs_the_readme_test_command():
    lines = quickstart_lines()
    assert len(lines) == 2
    assert "pytest" in lines[1]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert lines[1] in ci.splitlines()


def test_language_reference_names_every_op_initialiser_and_setting():
    text = README.read_text(encoding="utf-8")
    reference = text.split("## The language", 1)[1].split("## Diagnostics", 1)[0]
    for table in (OPS, INITS, OPTIMIZERS, SCHEDULES, AUGMENTS):
        for name, params in table.items():
            assert f"`{name}`" in reference, name
            for p in params:
                assert p.name in reference, f"{name}({p.name})"


def test_diagnostics_catalogue_lists_every_code():
    from archdsl.diagnostics import CATALOGUE

    text = README.read_text(encoding="utf-8")
    for code in CATALOGUE:
        assert f"| {code} |" in text, code
