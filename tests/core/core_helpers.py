"""Shared helpers of the front-end diagnostic tests: corpus headers and running the CLI.

A corpus file (tests/core/bad_specs, tests/core/warn_specs) starts with comment lines that
state what `archdsl check` must report, as data:

    # expect: E008 at 5:9          a diagnostic: code, line and column of the culprit
    # message: does not divide     (optional) a substring of the preceding one's message
    # hint: try one of [1, 2]      (optional) a substring of the preceding one's hint
    # expect: nothing              the file must check clean

The file must report exactly the listed diagnostics (as a multiset of code, line, column),
of any severity, and nothing else.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from archdsl import cli
from archdsl.cli import main

ROOT = Path(__file__).resolve().parents[2]
SPECS_DIR = ROOT / "specs"
CORE = Path(__file__).resolve().parent
BAD_DIR = CORE / "bad_specs"
WARN_DIR = CORE / "warn_specs"

SHIPPED_SPECS = sorted(SPECS_DIR.rglob("*.arch"))

_EXPECT = re.compile(r"#\s*expect:\s*(?P<code>[EWI]\d{3}) at (?P<line>\d+):(?P<col>\d+)\s*$")
_NOTHING = re.compile(r"#\s*expect:\s*nothing\s*$")
_DETAIL = re.compile(r"#\s*(?P<kind>message|hint):\s?(?P<text>.*)$")
# Python reprs of the front end's internal objects must never reach a user.
INTERNAL_REPR = ("Value(", "Pos(", "Span(", "Arg(", "Element(", "('-', ", "('*', ")


@dataclass
class Expected:
    """One expected diagnostic of a corpus file."""

    code: str
    line: int
    column: int
    messages: list[str] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, int, int]:
        return (self.code, self.line, self.column)

    @property
    def severity(self) -> str:
        return {"E": "error", "W": "warning", "I": "info"}[self.code[0]]


def read_header(path: Path) -> list[Expected]:
    """The expectations in the leading comment lines of a corpus file."""
    lines = path.read_text(encoding="utf-8").split("\n")
    if not (_EXPECT.match(lines[0]) or _NOTHING.match(lines[0])):
        raise ValueError(f"{path.name}: the first line must be `# expect: CODE at LINE:COL`")
    expected: list[Expected] = []
    for line in lines:
        if not line.startswith("#"):
            break
        if m := _EXPECT.match(line):
            expected.append(Expected(m["code"], int(m["line"]), int(m["col"])))
        elif m := _DETAIL.match(line):
            if not expected:
                raise ValueError(f"{path.name}: `# {m['kind']}:` before any `# expect:`")
            target = expected[-1].messages if m["kind"] == "message" else expected[-1].hints
            target.append(m["text"])
    return expected


def keys(diagnostics) -> Counter:
    """The multiset of (code, line, column) of diagnostics (objects or JSON dicts)."""
    out: Counter = Counter()
    for d in diagnostics:
        if isinstance(d, dict):
            out[(d["code"], d["line"], d["column"])] += 1
        else:
            out[(d.code, d.span.line, d.span.column)] += 1
    return out


def run_inprocess(capsys, *argv: str) -> tuple[int, str, str]:
    """`archdsl ARGV` through cli.main in this process: (exit code, stdout, stderr)."""
    capsys.readouterr()
    # cli._print_diagnostics binds `stream=sys.stderr` when archdsl.cli is imported, so a
    # later redirection of sys.stderr (capsys here) misses the diagnostics: point the default
    # at the current stream while main runs (the bug itself is test_diagnostic_quality's
    # test_diagnostics_follow_a_redirected_stderr).
    defaults = cli._print_diagnostics.__defaults__
    if defaults and hasattr(defaults[0], "write"):
        cli._print_diagnostics.__defaults__ = (sys.stderr, *defaults[1:])
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse errors
        code = exc.code
    finally:
        cli._print_diagnostics.__defaults__ = defaults
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_subprocess(*argv: str, timeout: float = 60) -> tuple[int, str, str]:
    """`python -m archdsl ARGV` in a fresh process: (exit code, stdout, stderr)."""
    proc = subprocess.run(
        [sys.executable, "-m", "archdsl", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, "NO_COLOR": "1", "PYTHONIOENCODING": "utf-8"},
    )
    return proc.returncode, proc.stdout, proc.stderr


def relative(path: Path) -> str:
    """A path relative to the repository root, for test ids and messages."""
    return str(path.relative_to(ROOT))
